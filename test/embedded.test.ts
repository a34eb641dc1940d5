import { readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import { embeddedDataFolder, listeningUrl, spawnService } from './helpers/process.ts';
import { freePort } from './helpers/proxy.ts';

/** Pids of the processes whose command line names this data folder. */
async function processesUsing(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dataDir)) pids.push(Number(entry));
  }
  return pids;
}

/** The processes left on this data folder once they have had 2 s to end (none, or those still there). */
async function processesLeft(dataDir: string): Promise<number[]> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const pids = await processesUsing(dataDir);
    if (pids.length === 0 || Date.now() > deadline) return pids;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Embedded Postgres lifecycles, one after another: each initdb takes a few seconds of CPU.
test.serial('npm start on the embedded Postgres survives kill -9, and SIGTERM leaves no postgres behind', async (t) => {
  const dataDir = await embeddedDataFolder();
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) };

  const first = spawnService('all', env);
  const firstUrl = await listeningUrl(first, 60_000);
  t.is((await fetch(`${firstUrl}/readyz`)).status, 200);
  const secret = await readFile(path.join(dataDir, 'jwt-secret'), 'utf8');

  // A second start on the same folder while the first runs refuses, and leaves the first one alone.
  const intruder = spawnService('all', { ...env, PORT: '0' });
  t.is((await intruder.exited).code, 1);
  t.regex(intruder.lines.find((line) => line.level === 60)?.msg ?? '', /is in use by another running process/);
  t.is((await fetch(`${firstUrl}/readyz`)).status, 200);

  first.child.kill('SIGKILL');
  await first.exited;
  t.true((await processesUsing(dataDir)).length > 0, 'the postmaster outlives a kill -9 of its parent');

  const second = spawnService('all', env);
  t.teardown(() => second.child.kill('SIGKILL'));
  const secondUrl = await listeningUrl(second, 60_000);
  t.truthy(second.lines.find((line) => line.msg?.startsWith('stopping a Postgres left running')));
  t.is((await fetch(`${secondUrl}/readyz`)).status, 200);
  t.is(await readFile(path.join(dataDir, 'jwt-secret'), 'utf8'), secret, 'the development secret survives restarts');

  const stopping = Date.now();
  second.child.kill('SIGTERM');
  t.is((await second.exited).code, 0);
  t.true(Date.now() - stopping < 10_000);
  t.deepEqual(await processesLeft(dataDir), [], 'no postgres process is left');
});

test.serial('a port already in use gives a clear error, not `undefined`', async (t) => {
  const dataDir = await embeddedDataFolder();
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => blocker.once('listening', resolve));
  t.teardown(() => blocker.close());
  const { port } = blocker.address() as net.AddressInfo;

  const service = spawnService('all', { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(port) });
  const { code } = await service.exited;
  t.is(code, 1);
  const fatal = service.lines.find((line) => line.level === 60);
  t.regex(fatal?.msg ?? '', new RegExp(`port ${port} is already in use.*EMBEDDED_PG_PORT`));
  t.deepEqual(await processesUsing(dataDir), []);
});

test.serial(
  'Ctrl-C at a terminal (SIGINT to the whole process group, Postgres included) still stops cleanly',
  async (t) => {
    const dataDir = await embeddedDataFolder();
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    // A process group of its own, as a shell gives a command it runs: the terminal signals the whole group.
    const service = spawnService('all', { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()) }, 'node', {
      detached: true,
    });
    const child = service.child;
    t.teardown(() => child.kill('SIGKILL'));
    const url = await listeningUrl(service, 60_000);
    t.is((await fetch(`${url}/readyz`)).status, 200);

    process.kill(-(child.pid ?? 0), 'SIGINT');
    const { code } = await service.exited;
    t.is(code, 0, 'it exits 0 after its own shutdown, though Postgres got the signal too');
    t.truthy(service.lines.find((line) => line.msg === 'stopped'));
    t.deepEqual(await processesLeft(dataDir), [], 'no postgres process is left');
  },
);
