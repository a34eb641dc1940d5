import { readFileSync } from 'node:fs';

/** The service's version, as package.json says it (the user-agent of webhook deliveries names it). */
export const version: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
