import { useEffect, useState } from '/app/vendor/hooks.js';
import { api } from './api.js';
import { Alert, Field, formatTime, html, ShownOnce } from './ui.js';

const EVENTS = ['task.created', 'task.completed', 'task.deleted'];

function Deliveries({ endpoint }) {
  const [deliveries, setDeliveries] = useState(null);
  const [error, setError] = useState(null);
  const load = () =>
    api('GET', `/webhooks/${endpoint.id}/deliveries?limit=20`).then(({ body }) => setDeliveries(body), setError);
  useEffect(() => {
    load();
  }, []);
  const retry = (delivery) =>
    api('POST', `/webhooks/${endpoint.id}/deliveries/${delivery.id}/retry`).then(load, setError);
  return html`<div>
    <${Alert} error=${error} />
    ${deliveries?.length === 0 && html`<p class="muted">No deliveries yet.</p>`}
    ${
      deliveries?.length > 0 &&
      html`<table>
      <caption class="visually-hidden">Recent deliveries to ${endpoint.url}</caption>
      <thead><tr><th scope="col">Event</th><th scope="col">Task</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last answer</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${deliveries.map(
          (delivery) => html`<tr key=${delivery.id}>
            <td>${delivery.event_type}</td>
            <td>#${delivery.task_id}</td>
            <td class=${`status ${delivery.status}`}>${delivery.status}</td>
            <td>${delivery.attempts}</td>
            <td>${delivery.last_status_code ?? delivery.last_error ?? '—'}</td>
            <td>${delivery.status === 'failed' && html`<button onClick=${() => retry(delivery)}>Retry</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>`
    }
    <button onClick=${load}>Refresh deliveries</button>
  </div>`;
}

/** The caller's webhook endpoints: add one (its secret is shown once), see what was delivered, retry. */
export function Webhooks() {
  const [endpoints, setEndpoints] = useState([]);
  const [form, setForm] = useState({ url: '', events: ['task.completed'], description: '' });
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const [open, setOpen] = useState(null);
  const load = () => api('GET', '/webhooks').then(({ body }) => setEndpoints(body), setError);
  useEffect(() => {
    load();
  }, []);
  const toggle = (type) => (event) =>
    setForm({
      ...form,
      events: event.target.checked ? [...form.events, type] : form.events.filter((item) => item !== type),
    });
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const { body } = await api('POST', '/webhooks', form);
      setSecret({ url: body.url, value: body.secret });
      setForm({ url: '', events: ['task.completed'], description: '' });
      load();
    } catch (caught) {
      setError(caught);
    }
  };
  const remove = (endpoint) => api('DELETE', `/webhooks/${endpoint.id}`).then(load, setError);
  const setEnabled = (endpoint, enabled) => api('PATCH', `/webhooks/${endpoint.id}`, { enabled }).then(load, setError);
  return html`<form onSubmit=${submit} aria-labelledby="new-webhook">
      <h2 id="new-webhook">New webhook endpoint</h2>
      <${Alert} error=${error} />
      <${Field} label="URL" name="url" errors=${error?.fields} hint="Where each event is POSTed, signed (Standard Webhooks)"
        input=${(props) => html`<input ...${props} type="url" required value=${form.url} onInput=${(event) => setForm({ ...form, url: event.target.value })} />`} />
      <fieldset>
        <legend>Events</legend>
        ${EVENTS.map((type) => html`<label class="row"><input type="checkbox" checked=${form.events.includes(type)} onChange=${toggle(type)} /> ${type}</label>`)}
        ${error?.fields?.events && html`<p class="error">${error.fields.events}</p>`}
      </fieldset>
      <button class="primary" type="submit">Add endpoint</button>
    </form>
    ${
      secret &&
      html`<${ShownOnce} key=${secret.value} value=${secret.value} copyLabel="Copy secret" onDone=${() => setSecret(null)}>
        The signing secret of ${secret.url}. It is shown only now: keep it where your receiver can read it.
      <//>`
    }
    <section aria-labelledby="endpoint-list">
      <h2 id="endpoint-list">Your endpoints</h2>
      ${endpoints.length === 0 && html`<p class="muted">No endpoints yet.</p>`}
      <ul class="items">
        ${endpoints.map(
          (endpoint) => html`<li key=${endpoint.id}>
            <div class="row"><strong>${endpoint.url}</strong>
              <span class=${`status ${endpoint.enabled ? 'succeeded' : 'failed'}`}>${endpoint.enabled ? 'Enabled' : 'Disabled'}</span></div>
            <div class="muted">${endpoint.events.join(', ')}, since ${formatTime(endpoint.created_at)}</div>
            ${endpoint.disabled_reason && html`<div class="muted">Disabled: ${endpoint.disabled_reason}</div>`}
            <div class="row">
              <button aria-expanded=${open === endpoint.id} onClick=${() => setOpen(open === endpoint.id ? null : endpoint.id)}>Deliveries</button>
              <button onClick=${() => setEnabled(endpoint, !endpoint.enabled)}>${endpoint.enabled ? 'Disable' : 'Enable'}</button>
              <button onClick=${() => remove(endpoint)}>Delete</button>
            </div>
            ${open === endpoint.id && html`<${Deliveries} endpoint=${endpoint} />`}
          </li>`,
        )}
      </ul>
    </section>`;
}
