import net from 'node:net';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { query } from './helpers/db.ts';
import { signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService;
let token: string;
test.before(async () => {
  service = await startService();
  ({ token } = await signUp(service.api));
});
test.after.always(() => service?.stop());

/** Sends raw bytes and reads the whole answer (the server closes the connection). */
async function rawRequest(bytes: string | Buffer): Promise<{ status: number; head: string; body: any }> {
  const { port, hostname } = new URL(service.baseUrl);
  const socket = net.connect(Number(port), hostname);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.write(bytes);
  await new Promise((resolve) => socket.on('close', resolve));
  const text = Buffer.concat(chunks).toString();
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  let parsed: unknown = body;
  try {
    parsed = JSON.parse(body);
  } catch {}
  return { status, head, body: parsed };
}

const request = (method: string, path: string, headers: Record<string, string> = {}, body: string | Buffer = '') =>
  rawRequest(
    Buffer.concat([
      Buffer.from(
        `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n` +
          Object.entries({ 'Content-Length': String(Buffer.byteLength(body)), ...headers })
            .map(([name, value]) => `${name}: ${value}\r\n`)
            .join('') +
          '\r\n',
      ),
      Buffer.isBuffer(body) ? body : Buffer.from(body),
    ]),
  );

const counts = async () => {
  const [row] = await query<{ users: number; tasks: number; jobs: number }>(
    service.databaseUrl,
    `select (select count(*)::int from users) users, (select count(*)::int from tasks) tasks,
            (select count(*)::int from pgboss.job) jobs`,
  );
  if (!row) throw new Error('no counts');
  return row;
};

const isJsonError = (t: any, reply: { body: any }, code: string) => {
  t.is(typeof reply.body, 'object', `JSON body: ${JSON.stringify(reply.body)}`);
  t.is(reply.body?.error?.code, code);
  t.is(typeof reply.body?.error?.message, 'string');
};

test.serial('a NUL character in any stored string, or in the login email, is a 400 naming the field', async (t) => {
  const before = await counts();
  const cases: [string, unknown, string | undefined, string][] = [
    ['/tasks', { title: 'a\u0000b' }, token, 'title'],
    ['/tasks', { title: 'ok', description: '\u0000' }, token, 'description'],
    ['/register', { email: 'nul\u0000@example.com', password: 'password123' }, undefined, 'email'],
    ['/register', { email: 'nul@example.com', password: 'pass\u0000word123' }, undefined, 'password'],
    ['/login', { email: 'x\u0000@example.com', password: 'password123' }, undefined, 'email'],
  ];
  for (const [path, body, auth, field] of cases) {
    const reply = await service.api.post(path, body, auth);
    t.is(reply.status, 400, `${path} ${JSON.stringify(body)}`);
    isJsonError(t, reply, 'validation_failed');
    t.deepEqual(
      reply.body.error.details.map((detail: { field: string }) => detail.field),
      [field],
    );
  }
  const task = (await service.api.post('/tasks', { title: 'fine' }, token)).body;
  const patched = await service.api.patch(`/tasks/${task.id}`, { title: '\u0000' }, token);
  t.is(patched.status, 400);
  t.deepEqual(await counts(), { ...before, tasks: before.tasks + 1, jobs: before.jobs + 1 });
});

test.serial('lone surrogates are refused, so two different passwords never become the same one', async (t) => {
  const before = await counts();
  // JSON escapes for an unpaired high surrogate and an unpaired low surrogate.
  for (const password of ['password\\ud800', 'password\\udfff']) {
    const reply = await service.api.raw('POST', '/register', {
      headers: { 'content-type': 'application/json' },
      body: `{"email":"surrogate@example.com","password":"${password}"}`,
    });
    t.is(reply.status, 400);
    isJsonError(t, reply, 'validation_failed');
    t.is(reply.body.error.details[0].field, 'password');
  }
  t.deepEqual(await counts(), before);
});

test.serial('a body in another charset than UTF-8 is a 400, and changes nothing', async (t) => {
  const before = await counts();
  for (const charset of ['latin1', 'utf-16', 'shift_jis', 'no-such-charset']) {
    const reply = await service.api.raw('POST', '/tasks', {
      headers: { 'content-type': `application/json; charset=${charset}`, authorization: `Bearer ${token}` },
      body: Buffer.from('{"title":"caf\u00e9"}', 'latin1'),
    });
    t.is(reply.status, 400, charset);
    isJsonError(t, reply, 'invalid_json');
  }
  const utf8 = await service.api.raw('POST', '/tasks', {
    headers: { 'content-type': 'application/json; charset=UTF-8', authorization: `Bearer ${token}` },
    body: '{"title":"caf\u00e9"}',
  });
  t.is(utf8.status, 201);
  t.is(utf8.body.title, 'caf\u00e9');
  t.deepEqual(await counts(), { ...before, tasks: before.tasks + 1, jobs: before.jobs + 1 });
});

test.serial('Content-Encoding: bad gzip and gzip twice are 400, unknown encodings 415; real gzip works', async (t) => {
  const before = await counts();
  const json = { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
  const body = '{"title":"zipped"}';
  const cases: [Record<string, string>, string | Buffer, number, string][] = [
    [{ 'Content-Encoding': 'gzip' }, body, 400, 'invalid_json'],
    [{ 'Content-Encoding': 'gzip, gzip' }, gzipSync(body), 415, 'unsupported_media_type'],
    [{ 'Content-Encoding': 'compress' }, body, 415, 'unsupported_media_type'],
    [{ 'Content-Encoding': 'deflate' }, 'not deflate at all', 400, 'invalid_json'],
  ];
  for (const [headers, payload, status, code] of cases) {
    const reply = await request('POST', '/tasks', { ...json, ...headers }, payload);
    t.is(reply.status, status, JSON.stringify(headers));
    isJsonError(t, reply, code);
  }
  t.deepEqual(await counts(), before);
  const zipped = await request('POST', '/tasks', { ...json, 'Content-Encoding': 'gzip' }, gzipSync(body));
  t.is(zipped.status, 201);
  t.is(zipped.body.title, 'zipped');
});

test.serial('a method the route does not serve is a JSON 405 with Allow, whatever the method', async (t) => {
  for (const method of ['TRACE', 'PROPFIND', 'PUT', 'MKCOL']) {
    const reply = await request(method, '/login');
    t.is(reply.status, 405, method);
    isJsonError(t, reply, 'method_not_allowed');
    t.regex(reply.head, /\r\nAllow: POST\r\n/i);
  }
  const tasks = await request('TRACE', '/tasks', { Authorization: `Bearer ${token}` });
  t.is(tasks.status, 405);
  t.regex(tasks.head, /\r\nAllow: [A-Z, ]*GET/i);
  const unknownPath = await request('PROPFIND', '/nowhere');
  t.is(unknownPath.status, 404);
  isJsonError(t, unknownPath, 'not_found');
});

test.serial("Node's own parser errors are answered in JSON too", async (t) => {
  const huge = await request('GET', '/healthz', { 'X-Big': 'x'.repeat(20_000) });
  t.is(huge.status, 431);
  isJsonError(t, huge, 'headers_too_large');
  const crlf = await rawRequest('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Bad: a\rb\r\n\r\n');
  t.is(crlf.status, 400);
  isJsonError(t, crlf, 'bad_request');
  const unknownMethod = await rawRequest('FROB /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  t.is(unknownMethod.status, 400);
  isJsonError(t, unknownMethod, 'bad_request');
  t.regex(crlf.head, /content-type: application\/json/i);
});

test.serial(
  'a body nested thousands of levels deep is a 400 naming the limit on every route that reads one',
  async (t) => {
    const before = await counts();
    const { token: fresh } = await signUp(service.api);
    const task = (await service.api.post('/tasks', { title: 'target' }, fresh)).body;
    const afterSetUp = await counts();
    const deep = (levels: number, open: string, close: string, inner = '1') =>
      open.repeat(levels) + inner + close.repeat(levels);
    const bodies = [
      deep(5000, '[', ']'),
      deep(5000, '{"a":', '}'),
      `{"title":${deep(3000, '[', ']')}}`,
      `{"title":"ok","description":"x","x":${deep(3000, '{"b":', '}')}}`,
      deep(33, '[', ']'), // one past the limit
    ];
    for (const [method, path] of [
      ['POST', '/tasks'],
      ['PATCH', `/tasks/${task.id}`],
      ['POST', '/register'],
      ['POST', '/login'],
    ] as const) {
      for (const body of bodies) {
        const reply = await request(method, path, { 'Content-Type': 'application/json', Authorization: fresh }, body);
        t.is(reply.status, 400, `${method} ${path} ${body.slice(0, 20)}`);
        isJsonError(t, reply, 'validation_failed');
        t.deepEqual(reply.body.error.details, [
          { field: '(body)', message: 'must not nest arrays and objects more than 32 levels deep' },
        ]);
      }
    }
    // 32 levels is within the limit: an ordinary validation error, about the field.
    const atLimit = await request(
      'POST',
      '/tasks',
      { 'Content-Type': 'application/json', Authorization: fresh },
      `{"title":${deep(31, '[', ']')}}`,
    );
    t.is(atLimit.status, 400);
    t.is(atLimit.body.error.details[0].field, 'title');
    t.deepEqual(await counts(), afterSetUp);
    t.true(afterSetUp.tasks === before.tasks + 1);
  },
);

// The hostile-input findings of the fairness issue, each checked through the API as it was found.

test.serial(
  'a webhook URL is stored and shown as it will be called; whitespace, control characters and port 0 are refused',
  async (t) => {
    const before = await counts();
    for (const url of [' http://127.0.0.1/inj\r\nX-Injected: 1\t ', 'http://127.0.0.1/a b', 'http://127.0.0.1:0/']) {
      const reply = await service.api.post('/webhooks', { url }, token);
      t.is(reply.status, 400, JSON.stringify(url));
      t.is(reply.body.error.details[0].field, 'url');
    }
    const [{ endpoints } = { endpoints: -1 }] = await query<{ endpoints: number }>(
      service.databaseUrl,
      'select count(*)::int as endpoints from webhook_endpoints',
    );
    t.is(endpoints, 0);
    t.deepEqual(await counts(), before);
    const created = await service.api.post('/webhooks', { url: '  HTTP://127.0.0.1:80/a/../hook?x=ü  ' }, token);
    t.is(created.status, 201);
    t.is(created.body.url, 'http://127.0.0.1/hook?x=%C3%BC');
    const changed = await service.api.patch(
      `/webhooks/${created.body.id}`,
      { url: 'http://LOCALHOST:8080/./b' },
      token,
    );
    t.is(changed.body.url, 'http://localhost:8080/b');
    t.is((await service.api.delete(`/webhooks/${created.body.id}`, token)).status, 204);
  },
);

test.serial('IPv4-compatible and other ::/8 addresses are refused as webhook destinations by default', async (t) => {
  const strict = await startService({ webhooks: { allowPrivateNetworks: false, allowHttp: true } });
  try {
    const { token: mine } = await signUp(strict.api);
    for (const host of ['[::127.0.0.1]', '[::7f00:1]', '[::2]']) {
      const reply = await strict.api.post('/webhooks', { url: `http://${host}:48001/` }, mine);
      t.is(reply.status, 400, host);
      t.regex(reply.body.error.details[0].message, /non-public address/, host);
    }
  } finally {
    await strict.stop();
  }
});

test.serial('due_at takes the lowercase t and z that RFC 3339 allows', async (t) => {
  const at = new Date(Date.now() + 3_600_000).toISOString();
  const reply = await service.api.post(
    '/tasks',
    { title: 'lowercase', due_at: at.replace('T', 't').replace('Z', 'z') },
    token,
  );
  t.is(reply.status, 201, JSON.stringify(reply.body));
  t.is(reply.body.due_at, at);
  t.is((await service.api.delete(`/tasks/${reply.body.id}`, token)).status, 204);
});

test.serial('the page forbids framing one way: X-Frame-Options DENY beside frame-ancestors none', async (t) => {
  const page = await fetch(`${service.baseUrl}/`);
  t.is(page.headers.get('x-frame-options'), 'DENY');
  t.regex(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
});

test.serial('a new password equal to the current one is a 400, and every token still works', async (t) => {
  const reply = await service.api.post(
    '/me/password',
    { current_password: 'password123', new_password: 'password123' },
    token,
  );
  t.is(reply.status, 400);
  t.deepEqual(reply.body.error.details, [{ field: 'new_password', message: 'must differ from the current password' }]);
  t.is((await service.api.get('/me', token)).status, 200);
});

test.serial('a due-order cursor in year 0 is a 400 naming cursor, for users and admins', async (t) => {
  const { token: adminToken } = await signUp(service.api, 'admin');
  for (const [path, who] of [
    ['/tasks?sort=due&cursor=0000-01-01T00:00:00.000Z_1', token],
    ['/tasks?sort=due&cursor=0000-12-31T23:59:59.999Z_5', token],
    ['/tasks?sort=due&status=pending&cursor=0000-01-01T00:00:00.000Z_1', adminToken],
  ] as const) {
    const reply = await service.api.get(path, who);
    t.is(reply.status, 400, path);
    t.is(reply.body.error.details[0].field, 'cursor');
  }
  t.is((await service.api.get('/tasks?sort=due&cursor=0001-01-01T00:00:00.000Z_1', token)).status, 200);
});
