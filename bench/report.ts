import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { projectDir } from '../src/config.ts';

const dir = path.join(projectDir, '.artifacts');

/** Writes one part's figures to .artifacts/bench-<part>.json, for `bench/run.ts` to gather. */
export async function writeReport(part: string, figures: unknown): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `bench-${part}.json`), `${JSON.stringify(figures, null, 2)}\n`);
}

/** Whether `writeReport` has written figures for `part` on this machine. */
export const hasReport = (part: string): Promise<boolean> =>
  access(path.join(dir, `bench-${part}.json`)).then(
    () => true,
    () => false,
  );

/** What `writeReport` wrote for `part`. */
export async function readReport<T>(part: string): Promise<T> {
  return JSON.parse(await readFile(path.join(dir, `bench-${part}.json`), 'utf8')) as T;
}

/** The median, of at least one value. */
export const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** A progress line on stderr, rewritten in place; '' clears it. */
export const progress = (text: string): void => {
  process.stderr.write(`\r\x1b[K${text}`);
};
