import { useEffect, useState } from '/app/vendor/hooks.js';
import { api } from './api.js';
import { Alert, Field, formatTime, html, ShownOnce } from './ui.js';

const SCOPES = ['tasks:read', 'tasks:write', 'schedules:read', 'schedules:write', 'webhooks:read', 'webhooks:write'];

/** The caller's API keys: make one (shown once, with a copy button), see them, revoke one. */
export function ApiKeys() {
  const [keys, setKeys] = useState([]);
  const [form, setForm] = useState({ name: '', scopes: ['tasks:read'], days: '' });
  const [error, setError] = useState(null);
  const [made, setMade] = useState(null);
  const load = () => api('GET', '/me/api-keys').then(({ body }) => setKeys(body), setError);
  useEffect(() => {
    load();
  }, []);
  const toggle = (scope) => (event) =>
    setForm({
      ...form,
      scopes: event.target.checked ? [...form.scopes, scope] : form.scopes.filter((item) => item !== scope),
    });
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const body = { name: form.name, scopes: form.scopes };
      if (form.days !== '') body.expires_in_days = Number(form.days);
      const { body: key } = await api('POST', '/me/api-keys', body);
      setMade({ name: key.name, value: key.key });
      setForm({ name: '', scopes: ['tasks:read'], days: '' });
      load();
    } catch (caught) {
      setError(caught);
    }
  };
  const revoke = (key) => api('DELETE', `/me/api-keys/${key.id}`).then(load, setError);
  return html`<form onSubmit=${submit} aria-labelledby="new-key">
      <h2 id="new-key">New API key</h2>
      <p class="muted">For scripts and CI: send it as the token is sent. It acts as you, within its scopes, and never reaches your account's settings.</p>
      <${Alert} error=${error} />
      <${Field} label="Name" name="name" errors=${error?.fields} hint="What it is for"
        input=${(props) => html`<input ...${props} required maxlength="100" value=${form.name} onInput=${(event) => setForm({ ...form, name: event.target.value })} />`} />
      <fieldset>
        <legend>Scopes</legend>
        ${SCOPES.map((scope) => html`<label class="row"><input type="checkbox" checked=${form.scopes.includes(scope)} onChange=${toggle(scope)} /> ${scope}</label>`)}
        ${error?.fields?.scopes && html`<p class="error">${error.fields.scopes}</p>`}
      </fieldset>
      <${Field} label="Expires after (days)" name="expires_in_days" errors=${error?.fields} hint="1 to 3650; empty: never"
        input=${(props) => html`<input ...${props} type="number" min="1" max="3650" value=${form.days} onInput=${(event) => setForm({ ...form, days: event.target.value })} />`} />
      <button class="primary" type="submit">Create key</button>
    </form>
    ${
      made &&
      html`<${ShownOnce} key=${made.value} value=${made.value} copyLabel="Copy key" onDone=${() => setMade(null)}>
        The key ${made.name}. It is shown only now: store it in your script's secrets.
      <//>`
    }
    <section aria-labelledby="key-list">
      <h2 id="key-list">Your API keys</h2>
      ${keys.length === 0 && html`<p class="muted">No API keys yet.</p>`}
      ${
        keys.length > 0 &&
        html`<table>
        <caption class="visually-hidden">Your API keys</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody>
          ${keys.map(
            (key) => html`<tr key=${key.id}>
              <td>${key.name}</td>
              <td><code>${key.prefix}…</code></td>
              <td>${key.scopes.join(', ')}</td>
              <td>${formatTime(key.created_at)}</td>
              <td>${key.last_used_at ? formatTime(key.last_used_at) : 'never'}</td>
              <td>${key.expires_at ? formatTime(key.expires_at) : 'never'}</td>
              <td><button onClick=${() => revoke(key)} aria-label=${`Revoke ${key.name}`}>Revoke</button></td>
            </tr>`,
          )}
        </tbody>
      </table>`
      }
    </section>`;
}
