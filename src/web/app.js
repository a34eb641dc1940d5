import { useEffect, useState } from '/app/vendor/hooks.js';
import { render } from '/app/vendor/preact.js';
import { Admin } from './admin.js';
import { api, session, whenUnauthorized } from './api.js';
import { ApiKeys } from './apiKeys.js';
import { Schedules } from './schedules.js';
import { Tasks } from './tasks.js';
import { Alert, Field, html } from './ui.js';
import { Webhooks } from './webhooks.js';

function SignIn({ onSignedIn }) {
  const [form, setForm] = useState({ email: '', password: '', admin: false });
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const update = (key) => (event) =>
    setForm({ ...form, [key]: event.target.type === 'checkbox' ? event.target.checked : event.target.value });
  const logIn = async () => {
    const { body } = await api('POST', '/login', { email: form.email, password: form.password });
    session.set(body.token);
    onSignedIn();
  };
  const submit = (register) => async (event) => {
    event.preventDefault();
    setError(null);
    setNotice('');
    try {
      if (register) {
        const role = form.admin ? 'admin' : 'user';
        await api('POST', '/register', { email: form.email, password: form.password, role });
        setNotice('Account created.');
      }
      await logIn();
    } catch (caught) {
      setError(caught);
    }
  };
  return html`<main>
    <h2>Sign in or register</h2>
    <form onSubmit=${submit(false)} aria-label="Sign in or register">
      <${Alert} error=${error} />
      ${notice && html`<p class="notice" role="status">${notice}</p>`}
      <${Field} label="Email" name="email" errors=${error?.fields} input=${(props) => html`<input ...${props} type="email" autocomplete="username" required value=${form.email} onInput=${update('email')} />`} />
      <${Field} label="Password" name="password" errors=${error?.fields} hint="8 to 72 bytes" input=${(props) => html`<input ...${props} type="password" autocomplete="current-password" required value=${form.password} onInput=${update('password')} />`} />
      <div class="field">
        <label><input type="checkbox" checked=${form.admin} onChange=${update('admin')} /> Register as an admin
          <span class="muted">(only the first account on a fresh database may)</span></label>
      </div>
      <div class="row">
        <button class="primary" type="submit">Sign in</button>
        <button type="button" onClick=${submit(true)}>Register</button>
      </div>
    </form>
  </main>`;
}

const VIEWS = {
  tasks: 'Tasks',
  schedules: 'Schedules',
  webhooks: 'Webhooks',
  keys: 'API keys',
  admin: 'Administration',
};

function App() {
  const [me, setMe] = useState(null);
  const [view, setView] = useState('tasks');
  const [occurrencesOf, setOccurrencesOf] = useState(null); // a schedule whose tasks the list shows
  const [signedIn, setSignedIn] = useState(Boolean(session.token));
  useEffect(() => {
    whenUnauthorized(() => {
      session.set(null);
      setSignedIn(false);
      setMe(null);
    });
  }, []);
  useEffect(() => {
    if (!signedIn) return;
    api('GET', '/me').then(
      ({ body }) => setMe(body),
      () => {},
    );
  }, [signedIn]);
  const signOut = async () => {
    await api('POST', '/logout').catch(() => {});
    session.set(null);
    setMe(null);
    setSignedIn(false);
    setView('tasks');
  };
  const views = Object.entries(VIEWS).filter(([key]) => key !== 'admin' || me?.role === 'admin');
  return html`<header>
      <h1>Task Manager</h1>
      ${
        me &&
        html`<nav aria-label="Main"><ul>
          ${views.map(
            ([key, label]) =>
              html`<li><button aria-current=${view === key ? 'page' : undefined} onClick=${() => {
                setOccurrencesOf(null);
                setView(key);
              }}>${label}</button></li>`,
          )}
          <li><button onClick=${signOut}>Sign out</button></li>
        </ul></nav>
        <p class="muted">Signed in as ${me.email} (${me.role})</p>`
      }
    </header>
    ${
      !signedIn
        ? html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`
        : !me
          ? html`<main><p>Loading…</p></main>`
          : html`<main>
            ${view === 'tasks' && html`<${Tasks} me=${me} schedule=${occurrencesOf} onAllTasks=${() => setOccurrencesOf(null)} />`}
            ${
              view === 'schedules' &&
              html`<${Schedules} onShowOccurrences=${(schedule) => {
                setOccurrencesOf(schedule);
                setView('tasks');
              }} />`
            }
            ${view === 'webhooks' && html`<${Webhooks} />`}
            ${view === 'keys' && html`<${ApiKeys} />`}
            ${view === 'admin' && me.role === 'admin' && html`<${Admin} />`}
          </main>`
    }`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "Loading…" shown until the modules arrive
render(html`<${App} />`, root);
