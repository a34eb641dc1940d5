import { useEffect, useState } from '/app/vendor/hooks.js';
import { api } from './api.js';
import { Alert, Field, formatTime, html } from './ui.js';

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const ZONES = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [browserZone];

/** The next five times a cron fires in a zone, as the server computes them, shown in the browser's zone. */
function Preview({ cron, zone }) {
  const [times, setTimes] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!cron.trim()) return setTimes([]);
    const timer = setTimeout(() => {
      const search = new URLSearchParams({ cron, time_zone: zone, count: '5' });
      api('GET', `/schedules/preview?${search}`).then(
        ({ body }) => {
          setTimes(body);
          setError(null);
        },
        (caught) => {
          setTimes([]);
          setError(caught);
        },
      );
    }, 300);
    return () => clearTimeout(timer);
  }, [cron, zone]);
  if (error) return html`<p class="error" role="status">${Object.values(error.fields ?? {})[0] ?? error.message}</p>`;
  if (times.length === 0) return null;
  return html`<section aria-label="Next five times">
    <h3>Next five times</h3>
    <ol>${times.map((time) => html`<li key=${time.due_at}>${formatTime(time.due_at)}</li>`)}</ol>
  </section>`;
}

/** The cron, zone and text of a schedule: creating one, or changing one. */
function ScheduleForm({ initial, submitLabel, label, onSubmit, onCancel }) {
  const [form, setForm] = useState(initial);
  const [error, setError] = useState(null);
  const update = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      await onSubmit(form);
    } catch (caught) {
      setError(caught);
    }
  };
  const prefix = initial.id ? `edit-${initial.id}-` : '';
  return html`<form onSubmit=${submit} aria-label=${label}>
    <${Alert} error=${error} />
    <${Field} label="Title" name=${`${prefix}title`} errors=${error?.fields && { [`${prefix}title`]: error.fields.title }}
      input=${(props) => html`<input ...${props} required maxlength="200" value=${form.title} onInput=${update('title')} />`} />
    <${Field} label="Cron" name=${`${prefix}cron`} errors=${error?.fields && { [`${prefix}cron`]: error.fields.cron }}
      hint="minute hour day month weekday, e.g. 0 9 * * MON-FRI (a sixth field first for seconds)"
      input=${(props) => html`<input ...${props} required value=${form.cron} onInput=${update('cron')} />`} />
    <${Field} label="Time zone" name=${`${prefix}time_zone`} errors=${error?.fields && { [`${prefix}time_zone`]: error.fields.time_zone }}
      input=${(props) => html`<select ...${props} value=${form.time_zone} onChange=${update('time_zone')}>
        ${[...new Set([form.time_zone, ...ZONES])].map((zone) => html`<option key=${zone} value=${zone}>${zone}</option>`)}
      </select>`} />
    <${Preview} cron=${form.cron} zone=${form.time_zone} />
    <div class="row">
      <button class="primary" type="submit">${submitLabel}</button>
      ${onCancel && html`<button type="button" onClick=${onCancel}>Cancel</button>`}
    </div>
  </form>`;
}

function ScheduleRow({ schedule, onChanged, onGone, onShowOccurrences, setError }) {
  const [editing, setEditing] = useState(false);
  const patch = async (body) => {
    const { body: changed } = await api('PATCH', `/schedules/${schedule.id}`, body);
    onChanged(changed);
  };
  const remove = () => api('DELETE', `/schedules/${schedule.id}`).then(() => onGone(schedule.id), setError);
  return html`<li class="item">
    <h3>${schedule.title}</h3>
    <p><code>${schedule.cron}</code> in ${schedule.time_zone}
      ${schedule.paused ? html` · <strong>paused</strong>` : html` · next ${formatTime(schedule.next_due_at)}`}
      ${schedule.skipped > 0 && html` · ${schedule.skipped} skipped`}</p>
    <div class="row">
      <button onClick=${() => patch({ paused: !schedule.paused }).catch(setError)}
        aria-label=${`${schedule.paused ? 'Resume' : 'Pause'} ${schedule.title}`}>${schedule.paused ? 'Resume' : 'Pause'}</button>
      <button aria-expanded=${editing} onClick=${() => setEditing(!editing)} aria-label=${`Edit ${schedule.title}`}>Edit</button>
      <button onClick=${() => onShowOccurrences(schedule)} aria-label=${`Occurrences of ${schedule.title}`}>Occurrences</button>
      <button onClick=${remove} aria-label=${`Delete ${schedule.title}`}>Delete</button>
    </div>
    ${
      editing &&
      html`<${ScheduleForm} label=${`Edit ${schedule.title}`} submitLabel="Save"
        initial=${{ id: schedule.id, title: schedule.title, cron: schedule.cron, time_zone: schedule.time_zone }}
        onSubmit=${async (form) => {
          await patch({ title: form.title, cron: form.cron, time_zone: form.time_zone });
          setEditing(false);
        }}
        onCancel=${() => setEditing(false)} />`
    }
  </li>`;
}

/** The caller's schedules: a task at every cron time, in a time zone. */
export function Schedules({ onShowOccurrences }) {
  const [schedules, setSchedules] = useState([]);
  const [error, setError] = useState(null);
  const [formKey, setFormKey] = useState(0);
  const load = () => api('GET', '/schedules?limit=100').then(({ body }) => setSchedules(body), setError);
  useEffect(() => {
    load();
  }, []);
  const create = async (form) => {
    await api('POST', '/schedules', form);
    setFormKey(formKey + 1); // a fresh form
    load();
  };
  const changed = (schedule) => setSchedules((list) => list.map((item) => (item.id === schedule.id ? schedule : item)));
  const gone = (id) => setSchedules((list) => list.filter((item) => item.id !== id));
  return html`<section aria-labelledby="new-schedule">
      <h2 id="new-schedule">New schedule</h2>
      <p class="muted">A task at every time the cron names, in your time zone: each one completes at its time, and the next is written with it.</p>
      <${ScheduleForm} key=${formKey} label="New schedule" submitLabel="Create schedule"
        initial=${{ title: '', cron: '0 9 * * MON-FRI', time_zone: browserZone }} onSubmit=${create} />
    </section>
    <section aria-labelledby="schedule-list">
      <h2 id="schedule-list">Your schedules</h2>
      <${Alert} error=${error} />
      ${schedules.length === 0 && html`<p class="muted">No schedules yet.</p>`}
      <ul class="items" aria-label="Schedules">
        ${schedules.map(
          (schedule) =>
            html`<${ScheduleRow} key=${schedule.id} schedule=${schedule} onChanged=${changed} onGone=${gone}
              onShowOccurrences=${onShowOccurrences} setError=${setError} />`,
        )}
      </ul>
    </section>`;
}
