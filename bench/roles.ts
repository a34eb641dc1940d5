import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectDir } from '../src/config.ts';

/** The JWT secret of the processes the benchmarks start. */
export const BENCH_JWT_SECRET = 'bench-secret-that-is-at-least-32-characters';

export type RoleProcess = { child: ChildProcess; stop(): Promise<void> };

/**
 * A role as the Procfile starts it (`node src/main.ts <role>`, NODE_ENV=production), or the Fastify peer
 * (`node bench/peer.ts`), in a process of its own, so that it never shares an event loop with the load generator; resolves once its log says
 * `readyMessage`. Its log lines go to a file under .artifacts (the benchmark never reads them while it
 * measures), removed after a clean stop. `env` is added to the environment.
 */
export async function startRole(
  role: 'web' | 'worker' | 'all' | 'peer',
  url: string,
  readyMessage: string,
  env: Record<string, string> = {},
): Promise<RoleProcess & { port: number }> {
  await mkdir(path.join(projectDir, '.artifacts'), { recursive: true });
  const logFile = path.join(projectDir, '.artifacts', `bench-${role}-${process.pid}-${++started}.log`);
  const out = await open(logFile, 'w');
  // `peer` is bench/peer.ts, the Fastify + pg peer of the request path; the others are the service's roles.
  const args =
    role === 'peer' ? [path.join(projectDir, 'bench/peer.ts')] : [path.join(projectDir, 'src/main.ts'), role];
  const child = spawn(process.execPath, args, {
    cwd: projectDir,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      DATABASE_URL: url,
      JWT_SECRET: BENCH_JWT_SECRET,
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', out.fd, out.fd],
  });
  await out.close();
  // A benchmark that fails leaves no service running behind it.
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  void exited.then(() => process.off('exit', orphan));
  for (;;) {
    const text = await readFile(logFile, 'utf8');
    const line = text.split('\n').find((entry) => entry.includes(readyMessage));
    if (line) {
      const port = Number((JSON.parse(line) as { port?: number }).port ?? 0);
      return {
        child,
        port,
        async stop() {
          child.kill('SIGTERM');
          if ((await exited) === 0) await rm(logFile, { force: true });
        },
      };
    }
    const code = await Promise.race([exited, sleep(50).then(() => 'running' as const)]);
    if (code !== 'running') throw new Error(`${role} exited with ${code}:\n${text.slice(-2_000)}`);
  }
}
let started = 0;

/** Resident memory of a process, in MiB (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** CPU time (user + system) a process has used so far, in milliseconds (Linux: /proc/<pid>/stat). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so it is skipped by its closing parenthesis):
  // utime and stime are the 12th and 13th, in clock ticks of 10 ms.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
