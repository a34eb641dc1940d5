import { validate as validateOpenApi } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import test from 'ava';
import { createRouters } from '../src/http/app.ts';
import { query } from './helpers/db.ts';
import { type Reply, signUp, startService, type TestService } from './helpers/service.ts';
import { openStream } from './helpers/sse.ts';

let service: TestService;
let document: any;
test.before(async () => {
  service = await startService();
  document = await (await fetch(`${service.baseUrl}/openapi.json`)).json();
});
test.after.always(() => service?.stop());

test('GET /openapi.json is a valid OpenAPI 3.1 document', async (t) => {
  t.is(document.openapi, '3.1.0');
  const result = await validateOpenApi(structuredClone(document));
  t.true(result.valid, JSON.stringify(result));
  t.deepEqual(document.components.securitySchemes.bearer, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'The token from POST /login. The `Bearer ` prefix is optional: the bare token works too.',
  });
});

test('the document lists exactly the routes the Koa routers serve', (t) => {
  const served = new Set<string>();
  for (const router of createRouters(service.deps)) {
    for (const layer of router.stack) {
      for (const method of layer.methods) {
        if (method === 'HEAD') continue; // Koa adds it to every GET
        served.add(`${method} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`);
      }
    }
  }
  const documented = new Set<string>();
  for (const [path, item] of Object.entries<Record<string, unknown>>(document.paths)) {
    for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${path}`);
  }
  t.deepEqual([...served].sort(), [...documented].sort());
  t.true(served.size >= 15, `${served.size} routes`);
});

test("each operation's security says what its route's auth lets in: a login token, or a key with the scope", (t) => {
  let checked = 0;
  for (const router of createRouters(service.deps)) {
    for (const layer of router.stack) {
      const auth = layer.stack.find((middleware) => 'access' in middleware) as { access: string } | undefined;
      for (const method of layer.methods) {
        if (method === 'HEAD') continue;
        const operation = document.paths[String(layer.path).replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
        const where = `${method} ${layer.path}`;
        const security = operation?.security ?? [];
        if (!auth) {
          t.false(
            security.some((entry: object) => 'apiKey' in entry),
            `${where}: no key`,
          );
          continue;
        }
        const expected =
          auth.access === 'login'
            ? [{ bearer: [] }]
            : [{ bearer: [] }, { apiKey: auth.access === 'any' ? [] : [auth.access] }];
        t.deepEqual(security, expected, where);
        checked++;
      }
    }
  }
  t.true(checked >= 25, `${checked} operations`);
});

/** The schema the document gives for this answer; throws when the answer is not documented at all. */
function documentedResponse(path: string, method: string, status: number) {
  const operation = document.paths[path]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method} ${path} is not documented`);
  const response = operation.responses[String(status)];
  if (!response) throw new Error(`${method} ${path} answered ${status}, which is not documented`);
  return response;
}

test('real answers of every route, successes and errors, match the document', async (t) => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema(document, 'doc');
  const pointer = (...parts: string[]) =>
    parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
  let checked = 0;
  const check = (template: string, method: string, reply: Reply) => {
    const response = documentedResponse(template, method, reply.status);
    const type = (reply.headers.get('content-type') ?? '').split(';')[0] ?? '';
    if (reply.status === 204) {
      t.is(response.content, undefined);
      return;
    }
    t.truthy(response.content?.[type], `${method} ${template} ${reply.status}: ${type} is documented`);
    if (type === 'application/json') {
      const ref = `doc#/paths/${pointer(template)}/${method.toLowerCase()}/responses/${reply.status}/content/${pointer('application/json')}/schema`;
      const validate = ajv.compile({ $ref: ref });
      t.true(validate(reply.body), `${method} ${template} ${reply.status}: ${JSON.stringify(validate.errors)}`);
    }
    checked++;
  };
  const api = service.api;
  const raw = async (method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> => {
    const response = await fetch(`${service.baseUrl}${path}`, { method, headers });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: response.status, headers: response.headers, body };
  };

  const admin = await signUp(api, 'admin');
  const { token } = await signUp(api);
  check('/register', 'POST', await api.post('/register', { email: 'dev@example.com', password: 'securepassword123' }));
  check('/register', 'POST', await api.post('/register', { email: 'dev@example.com', password: 'securepassword123' }));
  check('/register', 'POST', await api.post('/register', { email: 'not an email', password: 'short' }));
  check(
    '/register',
    'POST',
    await api.post('/register', { email: 'x@example.com', password: 'password123', role: 'admin' }),
  );
  check('/login', 'POST', await api.post('/login', { email: 'dev@example.com', password: 'securepassword123' }));
  check('/login', 'POST', await api.post('/login', { email: 'dev@example.com', password: 'wrong password' }));
  check('/login', 'POST', await api.raw('POST', '/login', { headers: { 'content-type': 'text/plain' }, body: 'x' }));
  check('/me', 'GET', await api.get('/me', token));
  check('/me', 'GET', await api.get('/me', 'not-a-token'));

  const body = (method: string, path: string, payload: unknown, bearer: string) =>
    api.raw(method, path, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify(payload),
    });
  const leaver = await signUp(api);
  check('/users', 'GET', await api.get('/users?limit=1', admin.token));
  check('/users', 'GET', await api.get('/users', token));
  check('/users/{id}', 'GET', await api.get(`/users/${leaver.user.id}`, admin.token));
  check('/users/{id}', 'GET', await api.get('/users/999999', admin.token));
  check('/users/{id}', 'PATCH', await api.patch(`/users/${leaver.user.id}`, { role: 'user' }, admin.token));
  check('/users/{id}', 'PATCH', await api.patch(`/users/${admin.user.id}`, { role: 'user' }, admin.token));
  check(
    '/me/password',
    'POST',
    await body('POST', '/me/password', { current_password: 'x', new_password: 'y' }, token),
  );
  check('/me', 'DELETE', await body('DELETE', '/me', { password: 'password123' }, admin.token));
  check(
    '/me/password',
    'POST',
    await body('POST', '/me/password', { current_password: 'password123', new_password: 'password456' }, leaver.token),
  );
  check('/logout', 'POST', await api.post('/logout', undefined, leaver.token));
  const again = await signUp(api);
  check('/users/{id}', 'DELETE', await api.delete(`/users/${again.user.id}`, admin.token));
  check('/users/{id}', 'DELETE', await api.delete(`/users/${again.user.id}`, admin.token));
  check('/me', 'DELETE', await body('DELETE', '/me', { password: 'password123' }, (await signUp(api)).token));

  // An admin for the admin routes of keys (the first one left above): made one by SQL, as an operator would.
  const keyAdmin = await signUp(api);
  await query(service.databaseUrl, `update users set role = 'admin' where id = $1`, [keyAdmin.user.id]);
  const adminToken = keyAdmin.token;
  const key = await api.post('/me/api-keys', { name: 'docs', scopes: ['tasks:read'] }, token);
  check('/me/api-keys', 'POST', key);
  check('/me/api-keys', 'POST', await api.post('/me/api-keys', { name: 'x', scopes: ['nope'] }, token));
  check('/me/api-keys', 'GET', await api.get('/me/api-keys', token));
  check('/me/api-keys', 'GET', await api.get('/me/api-keys', key.body.key));
  check('/tasks', 'POST', await api.post('/tasks', { title: 'by a read key' }, key.body.key));
  check('/users/{id}/api-keys', 'GET', await api.get(`/users/${key.body.id}/api-keys`, token));
  const { user: keyOwner } = await api.get('/me', token).then((reply) => ({ user: reply.body }));
  check('/users/{id}/api-keys', 'GET', await api.get(`/users/${keyOwner.id}/api-keys`, adminToken));
  check(
    '/users/{id}/api-keys/{key_id}',
    'DELETE',
    await api.delete(`/users/${keyOwner.id}/api-keys/999999`, adminToken),
  );
  check('/me/api-keys/{key_id}', 'DELETE', await api.delete(`/me/api-keys/${key.body.id}`, token));
  check('/me/api-keys/{key_id}', 'DELETE', await api.delete(`/me/api-keys/${key.body.id}`, token));
  const spareKey = await api.post('/me/api-keys', { name: 'spare', scopes: ['tasks:read'] }, token);
  check(
    '/users/{id}/api-keys/{key_id}',
    'DELETE',
    await api.delete(`/users/${keyOwner.id}/api-keys/${spareKey.body.id}`, adminToken),
  );

  const hook = await api.post('/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['task.deleted'] }, token);
  check('/webhooks', 'POST', hook);
  check('/webhooks', 'POST', await api.post('/webhooks', { url: 'ftp://x' }, token));
  check('/webhooks', 'GET', await api.get('/webhooks', token));
  check('/webhooks/{id}', 'GET', await api.get(`/webhooks/${hook.body.id}`, token));
  check('/webhooks/{id}', 'GET', await api.get('/webhooks/999999', token));
  check('/webhooks/{id}', 'PATCH', await api.patch(`/webhooks/${hook.body.id}`, { description: 'd' }, token));
  check(
    '/webhooks/{id}/rotate-secret',
    'POST',
    await api.post(`/webhooks/${hook.body.id}/rotate-secret`, undefined, token),
  );
  check('/webhooks/{id}/deliveries', 'GET', await api.get(`/webhooks/${hook.body.id}/deliveries`, token));
  check(
    '/webhooks/{id}/deliveries/{delivery_id}/retry',
    'POST',
    await api.post(`/webhooks/${hook.body.id}/deliveries/00000000-0000-4000-8000-000000000000/retry`, undefined, token),
  );
  const spare = await api.post('/webhooks', { url: 'http://127.0.0.1:9/spare' }, token);
  check('/webhooks/{id}', 'DELETE', await api.delete(`/webhooks/${spare.body.id}`, token));

  const created = await api.post('/tasks', { title: 'Deployment Task', description: 'description here' }, token);
  check('/tasks', 'POST', created);
  check('/tasks', 'POST', await api.post('/tasks', { title: '' }, token));
  check('/tasks', 'POST', await api.post('/tasks', { title: 'x' }));
  const keyed = { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'k1' };
  await api.raw('POST', '/tasks', { headers: keyed, body: JSON.stringify({ title: 'one' }) });
  check('/tasks', 'POST', await api.raw('POST', '/tasks', { headers: keyed, body: JSON.stringify({ title: 'two' }) }));
  check('/tasks', 'GET', await api.get('/tasks?limit=1', token));
  check('/tasks', 'GET', await api.get('/tasks?limit=0', token));
  check('/tasks', 'GET', await api.get(`/tasks?user_id=${admin.user.id}`, token));
  check('/tasks/{id}', 'GET', await api.get(`/tasks/${created.body.id}`, token));
  check(
    '/tasks/{id}',
    'GET',
    await raw('GET', `/tasks/${created.body.id}`, { authorization: token, prefer: 'wait=0' }),
  );
  check('/tasks/{id}', 'GET', await api.get('/tasks/999999', token));
  check('/tasks', 'POST', await api.post('/tasks', { title: 'soon', delay_seconds: 300 }, token));
  check('/tasks', 'GET', await api.get('/tasks?sort=due&limit=1', token));
  check('/tasks/{id}', 'PATCH', await api.patch(`/tasks/${created.body.id}`, { delay_seconds: 60 }, token));
  check('/tasks/{id}', 'PATCH', await api.patch(`/tasks/${created.body.id}`, { status: 'completed' }, token));
  check('/tasks/{id}', 'PATCH', await api.patch(`/tasks/${created.body.id}`, { status: 'pending' }, token));
  check('/tasks/{id}', 'PATCH', await api.patch(`/tasks/${created.body.id}`, { delay_seconds: 60 }, token));
  check('/tasks/{id}', 'DELETE', await api.delete(`/tasks/${created.body.id}`, token));
  check('/tasks/{id}', 'DELETE', await api.delete(`/tasks/${created.body.id}`, token));
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
  check('/tasks/events', 'GET', { status: stream.response.status, headers: stream.response.headers, body: null });
  await stream.close();
  check('/tasks/events', 'GET', await api.get(`/tasks/events?user_id=${admin.user.id}`, token));
  check('/queue', 'GET', await api.get('/queue', admin.token));
  check('/queue', 'GET', await api.get('/queue', token));
  check('/', 'GET', await raw('GET', '/'));
  check('/app/{file}', 'GET', await raw('GET', '/app/app.js'));
  check('/app/{file}', 'GET', await raw('GET', '/app/nothing.js'));
  check('/app/vendor/{file}', 'GET', await raw('GET', '/app/vendor/preact.js'));
  check('/healthz', 'GET', await api.get('/healthz'));
  check('/readyz', 'GET', await api.get('/readyz'));
  check('/metrics', 'GET', await raw('GET', '/metrics'));
  check('/openapi.json', 'GET', await api.get('/openapi.json'));
  check('/docs', 'GET', await raw('GET', '/docs'));
  check('/docs/{file}', 'GET', await raw('GET', '/docs/swagger-ui.css'));
  check('/docs/{file}', 'GET', await raw('GET', '/docs/secrets.txt'));
  t.log(`${checked} answers checked against the document`);
});
