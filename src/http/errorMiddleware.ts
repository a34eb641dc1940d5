import type { Middleware } from 'koa';
import {
  BackendTerminatedError,
  CheckIntegrityConstraintViolationError,
  ConnectionError,
  ForeignKeyIntegrityConstraintViolationError,
  NotFoundError,
  UniqueIntegrityConstraintViolationError,
} from 'slonik';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03']);
// pg's client-side timeouts (a partition: no answer, no refusal) and a connection that went away.
const CONNECTION_MESSAGES = /Query read timeout|timeout exceeded when trying to connect|Connection terminated/i;

const RETRY_SOON = { 'Retry-After': '5' };

/** Maps whatever was thrown to an AppError; anything unknown is a 500 whose details stay in the log. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof UniqueIntegrityConstraintViolationError) return new AppError(409, 'conflict', 'already exists');
  if (error instanceof NotFoundError) return new AppError(404, 'not_found', 'not found');
  // A value the schema's rules refuse (a check) or a row that refers to one gone meanwhile (a foreign key):
  // validation should have said so first; if it did not, the client still gets a 4xx, never a 500.
  if (error instanceof CheckIntegrityConstraintViolationError) {
    return new AppError(400, 'validation_failed', `a value is out of the allowed range (${error.constraint})`);
  }
  if (error instanceof ForeignKeyIntegrityConstraintViolationError) {
    return new AppError(409, 'conflict', 'it refers to something that does not exist (any more)');
  }
  const err = error as {
    status?: number;
    type?: string;
    code?: string;
    message?: string;
    cause?: { code?: string; message?: string };
  } | null;
  if (
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    CONNECTION_CODES.has(err?.code ?? err?.cause?.code ?? '') ||
    CONNECTION_MESSAGES.test(`${err?.message ?? ''} ${err?.cause?.message ?? ''}`)
  ) {
    return new AppError(503, 'unavailable', 'the database is unavailable, try again shortly', undefined, RETRY_SOON);
  }
  // Errors raised by the body parser (co-body, raw-body, inflation) carry a status; zlib's do not.
  if (err?.status === 415) {
    return new AppError(
      415,
      'unsupported_media_type',
      'unsupported Content-Encoding: send identity, gzip, deflate or br',
    );
  }
  if (typeof err?.code === 'string' && err.code.startsWith('Z_')) {
    return new AppError(400, 'invalid_json', 'the request body could not be decoded as its Content-Encoding says');
  }
  if (err?.status === 413) return new AppError(413, 'payload_too_large', 'the request body is too large');
  if (err?.status === 400) {
    return new AppError(400, 'invalid_json', 'the request body is not valid JSON (keys such as __proto__ are refused)');
  }
  return new AppError(500, 'internal', 'internal error');
}

/** The one place errors become responses: `{"error": {code, message, details?}}`, always JSON. */
export function errorMiddleware(log: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
      }
      if (ctx.status === 405) {
        throw new AppError(405, 'method_not_allowed', `${ctx.method} is not allowed here (see the Allow header)`);
      }
      if (ctx.status === 501) throw new AppError(501, 'not_implemented', `${ctx.method} is not implemented`);
    } catch (error) {
      const appError = toAppError(error);
      if (appError.status >= 500) log.error({ err: error, requestId: ctx.state.requestId }, 'request failed');
      ctx.status = appError.status;
      ctx.body = {
        error: {
          code: appError.code,
          message: appError.expose ? appError.message : 'internal error',
          ...(appError.details ? { details: appError.details } : {}),
        },
      };
      ctx.set({ ...(appError.status === 503 && RETRY_SOON), ...appError.headers });
    }
  };
}
