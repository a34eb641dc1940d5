// Server-Sent Events over fetch, so the Authorization header can be sent (EventSource cannot send it, and
// this service takes no token in a URL). @microsoft/fetch-event-source does the same, but its ES module
// build imports files without their extension, which a browser cannot load without a bundler; this is the
// part of it the page needs: parse the stream, and resume with Last-Event-ID after a cut.

/**
 * Streams `url`'s events to `onEvent({ event, id, data })` until the returned function is called, with the
 * token `token()` gives at each connection. The server ends a stream when its token expires: then it
 * reconnects at once, sending the last id, so nothing is missed and nothing shows; after a cut it waits 2 s
 * first. A 401 ends it (`onUnauthorized`): the token itself is no good any more.
 */
export function openEvents(url, token, onEvent, onUnauthorized) {
  const controller = new AbortController();
  let lastId = '';
  let stopped = false;
  let ended = false;
  const run = async () => {
    while (!stopped) {
      try {
        const headers = { authorization: `Bearer ${token()}`, accept: 'text/event-stream' };
        if (lastId) headers['last-event-id'] = lastId;
        const response = await fetch(url, { headers, signal: controller.signal });
        if (response.status === 401) {
          onUnauthorized();
          return;
        }
        const opened = Date.now();
        if (response.ok && response.body) {
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) {
              // The server ended a stream that had run a while (its token's expiry): reconnect now.
              ended = Date.now() - opened > 1000;
              break;
            }
            buffer += value;
            for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
              const fields = {};
              for (const line of buffer.slice(0, end).split('\n')) {
                if (line.startsWith(':')) continue; // a heartbeat
                const colon = line.indexOf(':');
                fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
              }
              buffer = buffer.slice(end + 2);
              if (fields.data === undefined) continue;
              if (fields.id) lastId = fields.id;
              onEvent({ event: fields.event ?? 'message', id: fields.id, data: JSON.parse(fields.data) });
            }
          }
        }
      } catch {
        if (stopped) return;
      }
      if (!ended) await new Promise((resolve) => setTimeout(resolve, 2000));
      ended = false;
    }
  };
  run();
  return () => {
    stopped = true;
    controller.abort();
  };
}
