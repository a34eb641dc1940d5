/** Every `error.code` the API answers with (the OpenAPI document lists them from here). */
export const errorCodes = [
  'invalid_json',
  'validation_failed',
  'bad_request',
  'unauthorized',
  'forbidden',
  'insufficient_scope',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'idempotency_key_reused',
  'rate_limited',
  'headers_too_large',
  'internal',
  'not_implemented',
  'unavailable',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/**
 * The one error type the service raises on purpose. `expose` says whether `message` may reach the client;
 * the HTTP layer maps it to `{"error": {code, message, details?}}`, with its `headers`.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly code: ErrorCode;
  readonly expose: boolean;
  readonly details: readonly { field: string; message: string }[] | undefined;
  /** Headers the answer carries (`Retry-After` of a 429 or a 503): set by the error middleware, not before. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    details?: readonly { field: string; message: string }[],
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.expose = status < 500 || status === 501 || status === 503;
    this.details = details;
    this.headers = headers;
  }
}

export const notFound = (what = 'resource') => new AppError(404, 'not_found', `${what} not found`);
export const unauthorized = (message = 'authentication required') => new AppError(401, 'unauthorized', message);
export const forbidden = (message: string) => new AppError(403, 'forbidden', message);
export const conflict = (message: string) => new AppError(409, 'conflict', message);
