/**
 * The peer the request path is measured against (issue 18): GET /tasks and POST /tasks written the way a
 * competent Node developer would with Fastify 5 and `pg`, sending the same statements as this service
 * (the per-request user read with its token generation; the list SELECT; the task insert and pg-boss's
 * own job insert in one transaction), with a pool of DATABASE_POOL_SIZE, JSON schemas for input and
 * output, and one pino line per request. Not part of the service: `bench/http.ts` starts it as a process
 * of its own (`node bench/peer.ts`, DATABASE_URL and JWT_SECRET in its environment) and reads its port from
 * its first line.
 */
import { createSecretKey, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import { PgBoss } from 'pg-boss';

const COMPLETE_TASK = 'complete-task';
const DELAY_SECONDS = 120;
const url = process.env.DATABASE_URL ?? '';
const key = createSecretKey(Buffer.from(process.env.JWT_SECRET ?? ''));
const pool = new pg.Pool({ connectionString: url, max: Number(process.env.DATABASE_POOL_SIZE ?? 6) });
// pg-boss builds the job insert; it sends it on the request's own client, inside the request's transaction.
const boss = new PgBoss({ connectionString: url, schema: 'pgboss', supervise: false, schedule: false, migrate: false });
await boss.start();

type Actor = { id: number; role: string };
class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

/** The token's user, as it is now: a deleted user or a revoked token is a 401. */
async function authenticate(header: string | undefined): Promise<Actor> {
  const token = header?.startsWith('Bearer ') ? header.slice(7) : '';
  let claims: { sub?: string; gen?: number };
  try {
    claims = jwt.verify(token, key, { algorithms: ['HS256'] }) as { sub?: string; gen?: number };
  } catch {
    throw new HttpError(401, 'unauthorized', 'invalid token');
  }
  const { rows } = await pool.query<{ id: string; role: string; token_generation: number }>(
    'select id, role, token_generation from users where id = $1',
    [Number(claims.sub)],
  );
  const user = rows[0];
  if (!user || user.token_generation !== (claims.gen ?? 0)) throw new HttpError(401, 'unauthorized', 'invalid token');
  return { id: Number(user.id), role: user.role };
}

const columns = 'id, user_id, title, description, status, due_at, completed_at, created_at, updated_at, job_id';
const task = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    user_id: { type: 'integer' },
    title: { type: 'string' },
    description: { type: 'string' },
    status: { type: 'string' },
    due_at: { type: 'string', format: 'date-time' },
    completed_at: { type: ['string', 'null'], format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    job_id: { type: ['string', 'null'] },
  },
} as const;
const error = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
} as const;

const app = Fastify({ logger: { level: 'info' }, disableRequestLogging: true });
// One line per request, as the service writes.
app.addHook('onResponse', async (request, reply) => {
  request.log.info({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime });
});
app.setErrorHandler((failure, _request, reply) => {
  if (failure instanceof HttpError) {
    return reply.code(failure.statusCode).send({ error: { code: failure.code, message: failure.message } });
  }
  if ((failure as { validation?: unknown }).validation) {
    return reply.code(400).send({ error: { code: 'validation_failed', message: (failure as Error).message } });
  }
  reply.log.error(failure);
  return reply.code(500).send({ error: { code: 'internal', message: 'internal error' } });
});

app.get<{ Querystring: { limit: number } }>(
  '/tasks',
  {
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
        additionalProperties: false,
      },
      response: { 200: { type: 'array', items: task }, 401: error },
    },
  },
  async (request, reply) => {
    const actor = await authenticate(request.headers.authorization);
    const { limit } = request.query;
    const { rows } = await pool.query(`select ${columns} from tasks where user_id = $1 order by id desc limit $2`, [
      actor.id,
      limit + 1,
    ]);
    if (rows.length > limit) {
      reply.header('link', `</tasks?limit=${limit}&after=${rows[limit - 1].id}>; rel="next"`);
    }
    return rows.slice(0, limit);
  },
);

app.post<{ Body: { title: string; description?: string } }>(
  '/tasks',
  {
    schema: {
      body: {
        type: 'object',
        required: ['title'],
        properties: {
          title: { type: 'string', minLength: 1, maxLength: 200 },
          description: { type: 'string', maxLength: 2000 },
        },
        additionalProperties: false,
      },
      response: { 201: task, 401: error },
    },
  },
  async (request, reply) => {
    const actor = await authenticate(request.headers.authorization);
    const client = await pool.connect();
    try {
      await client.query('begin');
      const jobId = randomUUID();
      const { rows } = await client.query(
        `insert into tasks (user_id, title, description, job_id, due_at)
         values ($1, $2, $3, $4, date_trunc('milliseconds', now() + make_interval(secs => $5)))
         returning ${columns}`,
        [actor.id, request.body.title, request.body.description ?? '', jobId, DELAY_SECONDS],
      );
      const created = rows[0];
      await boss.send(
        COMPLETE_TASK,
        { taskId: Number(created.id) },
        { id: jobId, startAfter: created.due_at, db: { executeSql: (text, values) => client.query(text, values) } },
      );
      await client.query('commit');
      reply.code(201).header('location', `/tasks/${created.id}`);
      return created;
    } catch (failure) {
      await client.query('rollback').catch(() => {});
      throw failure;
    } finally {
      client.release();
    }
  },
);

const address = await app.listen({ port: 0, host: '127.0.0.1' });
app.log.info({ port: Number(new URL(address).port) }, `listening on ${address}`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    await app.close();
    await boss.stop({ graceful: false });
    await pool.end();
    process.exit(0);
  });
}
