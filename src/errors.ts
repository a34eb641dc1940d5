/**
 * The one error type the service raises on purpose. `expose` says whether `message` may reach the client;
 * the HTTP layer maps it to `{"error": {code, message, details?}}`.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly details: readonly { field: string; message: string }[] | undefined;

  constructor(status: number, code: string, message: string, details?: readonly { field: string; message: string }[]) {
    super(message);
    this.status = status;
    this.code = code;
    this.expose = status < 500 || status === 501 || status === 503;
    this.details = details;
  }
}

export const notFound = (what = 'resource') => new AppError(404, 'not_found', `${what} not found`);
export const unauthorized = (message = 'authentication required') => new AppError(401, 'unauthorized', message);
export const forbidden = (message: string) => new AppError(403, 'forbidden', message);
export const conflict = (message: string) => new AppError(409, 'conflict', message);
