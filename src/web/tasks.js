import { useEffect, useRef, useState } from '/app/vendor/hooks.js';
import { api, nextPage, session } from './api.js';
import { openEvents } from './events.js';
import { Alert, countdown, Field, formatTime, html } from './ui.js';

const byOrder = (sort) => (a, b) => (sort === 'due' ? a.due_at.localeCompare(b.due_at) || a.id - b.id : b.id - a.id);

/** The due time as the API takes it: seconds or minutes from now, or a local date-time (sent with its offset). */
function dueOf(form) {
  if (form.when === 'at') return form.at ? { due_at: new Date(form.at).toISOString() } : {};
  const amount = Number(form.amount);
  return form.amount === '' ? {} : { delay_seconds: form.unit === 'minutes' ? amount * 60 : amount };
}

function CreateTask({ onCreated }) {
  const blank = { title: '', description: '', when: 'in', amount: '60', unit: 'seconds', at: '' };
  const [form, setForm] = useState(blank);
  const [error, setError] = useState(null);
  const update = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      const { body } = await api('POST', '/tasks', {
        title: form.title,
        description: form.description,
        ...dueOf(form),
      });
      setForm(blank);
      onCreated(body);
    } catch (caught) {
      setError(caught);
    }
  };
  const fields = error?.fields;
  return html`<form onSubmit=${submit} aria-labelledby="new-task">
    <h2 id="new-task">New task</h2>
    <${Alert} error=${error} />
    <${Field} label="Title" name="title" errors=${fields} input=${(props) => html`<input ...${props} required value=${form.title} onInput=${update('title')} />`} />
    <${Field} label="Description" name="description" errors=${fields} input=${(props) => html`<textarea ...${props} rows="2" value=${form.description} onInput=${update('description')} />`} />
    <fieldset>
      <legend>Due</legend>
      <div class="row">
        <label><input type="radio" name="when" value="in" checked=${form.when === 'in'} onChange=${update('when')} /> In</label>
        <label class="visually-hidden" for="due-amount">Due in how many</label>
        <input id="due-amount" type="number" min="0" step="1" inputmode="numeric" value=${form.amount} disabled=${form.when !== 'in'}
          aria-invalid=${fields?.delay_seconds ? 'true' : undefined} onInput=${update('amount')} />
        <label class="visually-hidden" for="due-unit">Unit</label>
        <select id="due-unit" value=${form.unit} disabled=${form.when !== 'in'} onChange=${update('unit')}>
          <option value="seconds">seconds</option>
          <option value="minutes">minutes</option>
        </select>
      </div>
      ${fields?.delay_seconds && html`<p class="error">${fields.delay_seconds}</p>`}
      <div class="row">
        <label><input type="radio" name="when" value="at" checked=${form.when === 'at'} onChange=${update('when')} /> At</label>
        <label class="visually-hidden" for="due-at">Due at (your time zone)</label>
        <input id="due-at" type="datetime-local" step="1" value=${form.at} disabled=${form.when !== 'at'}
          aria-invalid=${fields?.due_at ? 'true' : undefined} onInput=${update('at')} />
      </div>
      ${fields?.due_at && html`<p class="error">${fields.due_at}</p>`}
    </fieldset>
    <button class="primary" type="submit">Create task</button>
  </form>`;
}

function TaskItem({ task, now, onChanged, onGone }) {
  const [rescheduling, setRescheduling] = useState(false);
  const [delay, setDelay] = useState('60');
  const [error, setError] = useState(null);
  const act = (work) => async (event) => {
    event?.preventDefault();
    setError(null);
    try {
      await work();
    } catch (caught) {
      setError(caught);
    }
  };
  const patch = async (change) => {
    const { body } = await api('PATCH', `/tasks/${task.id}`, change);
    setRescheduling(false);
    onChanged(body);
  };
  const pending = task.status === 'pending';
  return html`<li aria-label=${`Task ${task.title}`}>
    <div class="row">
      <strong>${task.title}</strong>
      <span class=${`status ${task.status}`}>${pending ? 'Pending' : 'Completed'}</span>
      <span class="muted">#${task.id}</span>
    </div>
    ${task.description && html`<div>${task.description}</div>`}
    <div class="muted">
      ${
        pending
          ? html`Due ${formatTime(task.due_at)}, <span>${countdown(task.due_at, now)}</span>`
          : html`Completed ${formatTime(task.completed_at)}`
      }
    </div>
    <${Alert} error=${error} />
    ${
      pending &&
      html`<div class="row">
      <button onClick=${act(() => patch({ status: 'completed' }))}>Complete now</button>
      <button aria-expanded=${rescheduling} onClick=${() => setRescheduling(!rescheduling)}>Reschedule</button>
      <button onClick=${act(async () => {
        await api('DELETE', `/tasks/${task.id}`);
        onGone(task.id);
      })}>Delete</button>
    </div>`
    }
    ${
      !pending &&
      html`<div class="row"><button onClick=${act(async () => {
        await api('DELETE', `/tasks/${task.id}`);
        onGone(task.id);
      })}>Delete</button></div>`
    }
    ${
      rescheduling &&
      html`<form class="row" onSubmit=${act(() => patch({ delay_seconds: Number(delay) }))} aria-label=${`Reschedule ${task.title}`}>
      <label for=${`delay-${task.id}`}>New due time, in seconds from now</label>
      <input id=${`delay-${task.id}`} type="number" min="0" step="1" value=${delay} onInput=${(event) => setDelay(event.target.value)}
        aria-invalid=${error?.fields?.delay_seconds ? 'true' : undefined} />
      <button class="primary" type="submit">Save</button>
      ${error?.fields?.delay_seconds && html`<span class="error">${error.fields.delay_seconds}</span>`}
    </form>`
    }
  </li>`;
}

/**
 * The caller's tasks (an admin's: everyone's, or one user's), or one schedule's occurrences, live from the
 * event stream.
 */
export function Tasks({ me, schedule, onAllTasks }) {
  const [sort, setSort] = useState('created');
  const [userFilter, setUserFilter] = useState('');
  const [tasks, setTasks] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [now, setNow] = useState(Date.now());
  const order = useRef(sort);
  order.current = sort;

  const query = () => {
    const search = new URLSearchParams({ sort, limit: '20' });
    if (me.role === 'admin' && userFilter) search.set('user_id', userFilter);
    if (schedule) search.set('schedule_id', String(schedule.id));
    return search;
  };
  const upsert = (task) =>
    (!schedule || task.schedule_id === schedule.id) &&
    setTasks((list) => [...list.filter((item) => item.id !== task.id), task].sort(byOrder(order.current)));
  // Tasks known to be deleted, by this page or by an event: an event still on its way for one of them (its
  // creation, say) is not read again, since that read can only answer 404 (a red line in the console).
  const gone = useRef(new Set());
  const remove = (id) => {
    gone.current.add(id);
    setTasks((list) => list.filter((item) => item.id !== id));
  };

  useEffect(() => {
    setError(null);
    api('GET', `/tasks?${query()}`).then(({ body, headers }) => {
      setTasks(body);
      setNext(nextPage(headers));
    }, setError);
    // Live: every change to the listed tasks, as it commits (created, rescheduled, completed, deleted).
    const search = new URLSearchParams();
    if (me.role === 'admin' && userFilter) search.set('user_id', userFilter);
    return openEvents(
      `/tasks/events?${search}`,
      () => session.token,
      ({ event, data }) => {
        if (event === 'deleted') remove(data.task_id);
        else if (!gone.current.has(data.task_id))
          api('GET', `/tasks/${data.task_id}`).then(
            ({ body }) => upsert(body),
            () => remove(data.task_id),
          );
      },
      () => api('GET', '/me').catch(() => {}), // a revoked token: the next request signs the page out
    );
  }, [sort, userFilter, schedule]);

  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 200);
    return () => clearInterval(timer);
  }, []);

  const more = async () => {
    const { body, headers } = await api('GET', next);
    setTasks((list) => [...list, ...body.filter((task) => !list.some((item) => item.id === task.id))]);
    setNext(nextPage(headers));
  };

  return html`<${CreateTask} onCreated=${upsert} />
    <section aria-labelledby="task-list">
      <h2 id="task-list">${schedule ? `Occurrences of ${schedule.title}` : me.role === 'admin' ? 'Tasks (everyone’s)' : 'Your tasks'}</h2>
      ${schedule && html`<p><button onClick=${onAllTasks}>Show all tasks</button></p>`}
      <div class="row">
        <label for="sort">Order</label>
        <select id="sort" value=${sort} onChange=${(event) => setSort(event.target.value)}>
          <option value="created">Newest first</option>
          <option value="due">Soonest due first</option>
        </select>
        ${
          me.role === 'admin' &&
          html`<label for="user-filter">User id</label>
          <input id="user-filter" type="number" min="1" placeholder="all users" value=${userFilter}
            onChange=${(event) => setUserFilter(event.target.value)} />`
        }
      </div>
      <${Alert} error=${error} />
      ${tasks.length === 0 ? html`<p class="muted">No tasks yet.</p>` : null}
      <ul class="items" aria-label="Tasks">
        ${tasks.map((task) => html`<${TaskItem} key=${task.id} task=${task} now=${now} onChanged=${upsert} onGone=${remove} />`)}
      </ul>
      ${next && html`<button onClick=${more}>More</button>`}
    </section>`;
}
