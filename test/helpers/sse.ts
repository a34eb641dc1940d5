import { setTimeout as sleep } from 'node:timers/promises';

export type StreamEvent = { id: string; event: string; data: any };

/**
 * A Server-Sent Events client for tests (fetch, so it can send Authorization, as a browser's EventSource
 * cannot): collects the events as they arrive; `until` waits for a count.
 */
export async function openStream(url: string, token: string, lastEventId?: string) {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, ...(lastEventId && { 'last-event-id': lastEventId }) },
    signal: controller.signal,
  });
  const events: StreamEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const reading = (async () => {
    if (!response.body || response.status !== 200) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else fields[line.slice(0, line.indexOf(':'))] = line.slice(line.indexOf(':') + 1).trim();
          }
          if (fields.data !== undefined) {
            events.push({ id: fields.id ?? '', event: fields.event ?? 'message', data: JSON.parse(fields.data) });
          }
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {} // aborted
    ended = true;
  })();
  return {
    response,
    events,
    comments,
    get ended() {
      return ended;
    },
    // Generous: on a shared server, events wait while any older transaction runs (another test's CREATE DATABASE).
    async until(count: number, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) throw new Error(`${events.length} of ${count} events: ${JSON.stringify(events)}`);
        if (ended) throw new Error(`the stream ended after ${events.length} of ${count} events`);
        await sleep(20);
      }
      return events;
    },
    async close() {
      controller.abort();
      await reading;
    },
    finished: reading,
  };
}
