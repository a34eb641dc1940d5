import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectDir } from '../../src/config.ts';

export type ServiceProcess = {
  child: ChildProcess;
  /** Every JSON log line so far, parsed; other output as `{ text }`. */
  lines: Record<string, any>[];
  waitFor(predicate: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/**
 * Runs `node src/main.ts <role>` (or `npm run <role>`), with the given environment on top of a quiet one;
 * `detached` gives it a process group of its own, as a shell does for a command it runs.
 */
export function spawnService(
  role: string,
  env: Record<string, string>,
  via: 'node' | 'npm' = 'node',
  { detached = false } = {},
): ServiceProcess {
  const [command, args] =
    via === 'npm'
      ? ['npm', ['run', '--silent', role]]
      : [process.execPath, [path.join(projectDir, 'src/main.ts'), role]];
  const child = spawn(command, args, {
    cwd: projectDir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', BCRYPT_COST: '4', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  return watchOutput(child);
}

/** Collects a child's JSON log lines (other output as `{ text }`) and lets a test wait for one. */
export function watchOutput(child: ChildProcess): ServiceProcess {
  const lines: Record<string, any>[] = [];
  const push = (text: string) => {
    try {
      lines.push(JSON.parse(text));
    } catch {
      lines.push({ text });
    }
  };
  // A chunk may end inside a line: the rest of it is kept until its newline arrives (or the stream ends).
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) if (text) push(text);
    });
    stream?.on('end', () => {
      if (partial) push(partial);
      partial = '';
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    child,
    lines,
    exited,
    async waitFor(predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = lines.find(predicate);
        if (found) return found;
        if (done) break;
        await sleep(50);
      }
      throw new Error(
        `not seen within ${timeoutMs} ms; output:\n${lines.map((line) => JSON.stringify(line)).join('\n')}`,
      );
    },
  };
}

/**
 * A temporary DATA_DIR for a service that starts its own embedded Postgres: one the `postgres` user can
 * enter when the suite runs as root (mkdtemp makes it 0700).
 */
export async function embeddedDataFolder(prefix = 'task-manager-embedded-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** Waits for the "listening" log line and returns the base URL. */
export async function listeningUrl(service: ServiceProcess, timeoutMs?: number): Promise<string> {
  const line = await service.waitFor((entry) => entry.msg?.startsWith('listening on'), timeoutMs);
  return `http://127.0.0.1:${line.port}`;
}

/** The task ids each "completed tasks" log line reported, over all lines given. */
export const completedIds = (lines: Record<string, any>[]): number[] =>
  lines.filter((line) => line.msg === 'completed tasks').flatMap((line) => line.completed as number[]);

/** Polls until `check` returns a truthy value. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(200);
  }
}
