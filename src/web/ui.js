import { useState } from '/app/vendor/hooks.js';
import htm from '/app/vendor/htm.js';
import { h } from '/app/vendor/preact.js';

export const html = htm.bind(h);

/** A labelled input or select (`input` renders it with the given attributes), with the API's message for its field under it. */
export function Field({ label, name, errors, input, hint }) {
  const id = `field-${name}`;
  const message = errors?.[name];
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${input({ id, name, 'aria-invalid': message ? 'true' : undefined, 'aria-describedby': message ? `${id}-error` : undefined })}
    ${hint && html`<span class="muted">${hint}</span>`}
    ${message && html`<span class="error" id=${`${id}-error`}>${message}</span>`}
  </div>`;
}

/** The message of an error that is not about one field, where assistive technology announces it. */
export const Alert = ({ error }) =>
  error
    ? html`<p class="error" role="alert">${error.fields && Object.keys(error.fields).length > 0 ? 'Please check the fields below.' : error.message}</p>`
    : null;

export const formatTime = (iso) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** "in 4.2 s", "in 3 min 20 s", "1.3 s ago". */
export function countdown(iso, now) {
  const ms = Date.parse(iso) - now;
  const seconds = Math.abs(ms) / 1000;
  const text =
    seconds < 60
      ? `${seconds.toFixed(1)} s`
      : seconds < 3600
        ? `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`
        : `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** A secret shown once (a webhook's signing secret, an API key): what it is, the value, a copy button. */
export function ShownOnce({ children, value, copyLabel, onDone }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    await navigator.clipboard.writeText(value);
    setCopied(true);
  };
  return html`<div class="panel" role="status">
    <p>${children}</p>
    <p class="secret">${value}</p>
    <div class="row"><button onClick=${copy}>${copyLabel}</button>${copied && html`<span class="notice">Copied</span>`}
      <button onClick=${onDone}>Done</button></div>
  </div>`;
}
