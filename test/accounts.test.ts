import test from 'ava';
import jwt from 'jsonwebtoken';
import { query } from './helpers/db.ts';
import { signUp, startService, TEST_SECRET, type TestService } from './helpers/service.ts';

let service: TestService;
let adminToken: string;
test.before(async () => {
  service = await startService();
  adminToken = (await signUp(service.api, 'admin')).token;
});
test.after.always(() => service?.stop());

const userCount = async () =>
  Number((await query<{ n: string }>(service.databaseUrl, 'select count(*) n from users'))[0]?.n);

test.serial(
  'register returns the user without any password or hash, and stores a bcrypt hash of the configured cost',
  async (t) => {
    const reply = await service.api.post('/register', { email: 'Plain@Example.com', password: 'password123' });
    t.is(reply.status, 201);
    t.deepEqual(Object.keys(reply.body).sort(), ['created_at', 'email', 'id', 'role']);
    t.is(reply.body.role, 'user');
    t.is(reply.body.email, 'plain@example.com');
    const [row] = await query<{ password_hash: string }>(
      service.databaseUrl,
      'select password_hash from users where id = $1',
      [reply.body.id],
    );
    t.regex(row?.password_hash ?? '', /^\$2b\$04\$/);
  },
);

test.serial('emails are trimmed and unique case-insensitively: a second account is 409', async (t) => {
  t.is((await service.api.post('/register', { email: 'dup@example.com', password: 'password123' })).status, 201);
  const before = await userCount();
  const again = await service.api.post('/register', { email: '  DUP@Example.COM ', password: 'password123' });
  t.is(again.status, 409);
  t.is(again.body.error.code, 'conflict');
  t.is(await userCount(), before);
});

test.serial('passwords must be 8 to 72 bytes; longer is refused, never truncated', async (t) => {
  const tooShort = await service.api.post('/register', { email: 'short@example.com', password: 'seven77' });
  t.is(tooShort.status, 400);
  t.is(tooShort.body.error.code, 'validation_failed');
  t.deepEqual(
    tooShort.body.error.details.map((detail: { field: string }) => detail.field),
    ['password'],
  );
  t.is((await service.api.post('/register', { email: 'b72@example.com', password: 'a'.repeat(72) })).status, 201);
  t.is((await service.api.post('/register', { email: 'b73@example.com', password: 'a'.repeat(73) })).status, 400);
  // 37 characters but 74 bytes: the limit is in bytes, as bcrypt reads them.
  const multibyte = await service.api.post('/register', { email: 'mb@example.com', password: 'é'.repeat(37) });
  t.is(multibyte.status, 400);
  t.regex(multibyte.body.error.details[0].message, /72 bytes/);
  // The 72-byte password logs in; a 73-byte one with the same first 72 bytes does not.
  t.is((await service.api.post('/login', { email: 'b72@example.com', password: 'a'.repeat(72) })).status, 200);
  t.is((await service.api.post('/login', { email: 'b72@example.com', password: 'a'.repeat(73) })).status, 401);
});

test.serial('validation names every bad field and changes nothing', async (t) => {
  const before = await userCount();
  const reply = await service.api.post('/register', { email: 'not-an-email', password: 1, role: 'root', extra: true });
  t.is(reply.status, 400);
  const fields = reply.body.error.details.map((detail: { field: string }) => detail.field).sort();
  t.deepEqual(fields, ['(body)', 'email', 'password', 'role']);
  t.is(await userCount(), before);
});

test.serial('login gives a Bearer token; wrong password and unknown email get the same 401', async (t) => {
  await service.api.post('/register', { email: 'login@example.com', password: 'password123' });
  const ok = await service.api.post('/login', { email: ' LOGIN@example.com', password: 'password123' });
  t.is(ok.status, 200);
  t.is(ok.body.token_type, 'Bearer');
  t.is(ok.body.expires_in, 3600);
  const claims = jwt.verify(ok.body.token, TEST_SECRET) as jwt.JwtPayload;
  t.is(claims.role, 'user');
  t.is((claims.exp ?? 0) - (claims.iat ?? 0), 3600);
  const wrongPassword = await service.api.post('/login', { email: 'login@example.com', password: 'password124' });
  const unknownEmail = await service.api.post('/login', { email: 'nobody@example.com', password: 'password123' });
  t.is(wrongPassword.status, 401);
  t.deepEqual(wrongPassword.body, unknownEmail.body);
  t.is(unknownEmail.status, 401);
});

test.serial('/me accepts the token with and without "Bearer "', async (t) => {
  const { user, token } = await signUp(service.api);
  for (const header of [token, `Bearer ${token}`, `bearer ${token}`]) {
    const reply = await service.api.raw('GET', '/me', { headers: { authorization: header } });
    t.is(reply.status, 200);
    t.deepEqual(reply.body, user);
  }
});

test.serial('every kind of bad token is a 401 JSON error', async (t) => {
  const { user } = await signUp(service.api);
  const sign = (secret: string, options: jwt.SignOptions) =>
    jwt.sign({ role: 'admin' }, secret, { subject: String(user.id), ...options });
  const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
    JSON.stringify({ sub: String(user.id), role: 'admin', iat: 1, exp: 9_999_999_999 }),
  ).toString('base64url')}.`;
  const cases: [string, string | undefined, RegExp][] = [
    ['missing', undefined, /missing/],
    ['malformed', 'not.a.token', /invalid/],
    ['wrong signature', sign('another-secret-that-is-32-characters-long', { algorithm: 'HS256' }), /invalid/],
    ['alg none', unsigned, /invalid/],
    ['HS512 (algorithm is pinned)', sign(TEST_SECRET, { algorithm: 'HS512' }), /invalid/],
    ['expired', sign(TEST_SECRET, { algorithm: 'HS256', expiresIn: -10 }), /expired/],
  ];
  for (const [name, header, message] of cases) {
    const reply = await service.api.raw('GET', '/me', { headers: header ? { authorization: header } : {} });
    t.is(reply.status, 401, name);
    t.is(reply.body.error.code, 'unauthorized', name);
    t.regex(reply.body.error.message, message, name);
  }
});

test.serial('only an admin token may create another admin', async (t) => {
  const plain = await signUp(service.api);
  const before = await userCount();
  const anonymous = await service.api.post('/register', {
    email: 'a2@example.com',
    password: 'password123',
    role: 'admin',
  });
  t.is(anonymous.status, 403);
  t.is(anonymous.body.error.code, 'forbidden');
  const byUser = await service.api.post(
    '/register',
    { email: 'a3@example.com', password: 'password123', role: 'admin' },
    plain.token,
  );
  t.is(byUser.status, 403);
  t.is(await userCount(), before);
  const byAdmin = await service.api.post(
    '/register',
    { email: 'a4@example.com', password: 'password123', role: 'admin' },
    adminToken,
  );
  t.is(byAdmin.status, 201);
  t.is(byAdmin.body.role, 'admin');
  const badToken = await service.api.post('/register', { email: 'a5@example.com', password: 'password123' }, 'garbage');
  t.is(badToken.status, 401);
});

test.serial('two racing first-admin registrations: exactly one wins', async (t) => {
  const fresh = await startService();
  t.teardown(() => fresh.stop());
  const replies = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      fresh.api.post('/register', { email: `race${i}@example.com`, password: 'password123', role: 'admin' }),
    ),
  );
  t.deepEqual(replies.map((reply) => reply.status).sort(), [201, 403, 403, 403, 403, 403, 403, 403]);
  const admins = await query(fresh.databaseUrl, `select id from users where role = 'admin'`);
  t.is(admins.length, 1);
});

test.serial(
  'malformed JSON, a body too large, a non-JSON body and unknown routes get the JSON error shape',
  async (t) => {
    const before = await userCount();
    const json = { 'content-type': 'application/json' };
    const cases: [string, string, RequestInit, number, string][] = [
      ['POST', '/register', { headers: json, body: '{"email":' }, 400, 'invalid_json'],
      ['POST', '/register', { headers: json, body: '"a string"' }, 400, 'invalid_json'],
      [
        'POST',
        '/register',
        { headers: json, body: JSON.stringify({ email: 'x'.repeat(70_000) }) },
        413,
        'payload_too_large',
      ],
      [
        'POST',
        '/register',
        { headers: { 'content-type': 'text/plain' }, body: 'email=a' },
        415,
        'unsupported_media_type',
      ],
      ['GET', '/no-such-route', {}, 404, 'not_found'],
      ['PUT', '/register', {}, 405, 'method_not_allowed'],
    ];
    for (const [method, path, init, status, code] of cases) {
      const reply = await service.api.raw(method, path, init);
      t.is(reply.status, status, `${method} ${path} → ${code}`);
      t.is(reply.body.error.code, code);
      t.is(typeof reply.body.error.message, 'string');
    }
    t.is(await userCount(), before);
  },
);

test.serial('healthz and readyz answer 200 while the database is up', async (t) => {
  t.deepEqual((await service.api.get('/healthz')).body, { status: 'ok' });
  t.deepEqual((await service.api.get('/readyz')).body, { status: 'ready' });
});

test.serial('register and login are rate limited per client: 429 rate_limited with Retry-After', async (t) => {
  const limited = await startService({ authPerMinute: 3 });
  t.teardown(() => limited.stop());
  const attempt = () => limited.api.post('/login', { email: 'nobody@example.com', password: 'password123' });
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await attempt()).status);
  t.deepEqual(statuses, [401, 401, 401, 429]);
  const blocked = await attempt();
  t.is(blocked.body.error.code, 'rate_limited');
  const retryAfter = Number(blocked.headers.get('retry-after'));
  t.true(retryAfter > 0 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  // The limit is per route: registering still works, up to its own limit.
  const registered = await limited.api.post('/register', { email: 'limited@example.com', password: 'password123' });
  t.is(registered.status, 201);
});
