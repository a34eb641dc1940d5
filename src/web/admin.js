import { useEffect, useState } from '/app/vendor/hooks.js';
import { api, nextPage } from './api.js';
import { Alert, formatTime, html } from './ui.js';

function Queue() {
  const [queue, setQueue] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', '/queue').then(({ body }) => setQueue(body), setError);
  useEffect(() => {
    load();
  }, []);
  return html`<section aria-labelledby="queue">
    <h2 id="queue">The queue at a glance</h2>
    <${Alert} error=${error} />
    ${
      queue &&
      html`<dl class="row">
      <div class="panel"><dt>Pending tasks</dt><dd>${queue.pending}</dd></div>
      <div class="panel"><dt>Due in the next minute</dt><dd>${queue.due_next_minute}</dd></div>
      <div class="panel"><dt>Failed completion jobs</dt><dd>${queue.failed_jobs}</dd></div>
      <div class="panel"><dt>Failed webhook deliveries</dt><dd>${queue.failed_deliveries}</dd></div>
    </dl>`
    }
    <button onClick=${load}>Refresh</button>
  </section>`;
}

function Users() {
  const [users, setUsers] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const load = (path = '/users?limit=20', append = false) =>
    api('GET', path).then(({ body, headers }) => {
      setUsers((list) => (append ? [...list, ...body] : body));
      setNext(nextPage(headers));
    }, setError);
  useEffect(() => {
    load();
  }, []);
  const act = (work) => () => {
    setError(null);
    work().then(() => load(), setError);
  };
  return html`<section aria-labelledby="users">
    <h2 id="users">Users</h2>
    <${Alert} error=${error} />
    <table>
      <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
      <tbody>
        ${users.map(
          (user) => html`<tr key=${user.id}>
            <td>${user.email}</td>
            <td>${user.role}</td>
            <td>${formatTime(user.created_at)}</td>
            <td class="row">
              <button onClick=${act(() => api('PATCH', `/users/${user.id}`, { role: user.role === 'admin' ? 'user' : 'admin' }))}>
                ${user.role === 'admin' ? 'Make user' : 'Make admin'}<span class="visually-hidden"> ${user.email}</span></button>
              <button onClick=${act(() => api('DELETE', `/users/${user.id}`))}>Delete<span class="visually-hidden"> ${user.email}</span></button>
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${next && html`<button onClick=${() => load(next, true)}>More</button>`}
  </section>`;
}

/** For admins: the queue and the users. (Everyone's tasks are on the Tasks view, with a user filter.) */
export const Admin = () => html`<${Queue} /><${Users} />`;
