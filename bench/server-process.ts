import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A server under test, in a process of its own so that its memory and CPU are its own. */
export interface ServerProcess {
  url: string;
  pid: number;
  /** Starts sampling RSS and CPU; the returned function stops and reports them. */
  sample(): () => Usage;
  stop(): Promise<void>;
}

export interface Usage {
  /** Highest resident set size seen, in MB. */
  peakRssMb: number;
  /** CPU time used over wall time, in percent of one core (the writer thread can add beyond 100). */
  cpuPercent: number;
}

const ROOT = new URL('..', import.meta.url).pathname;
const CLOCK_TICKS_PER_SECOND = 100;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Runs `node <args>` with the port appended by `portArgs`, output to `logFile` (a pipe would make
 * this process, which also generates the load, read every log line), and waits until `/health`
 * or `/` answers.
 */
export async function startServer(
  args: string[],
  portArgs: (port: number) => string[],
  env: Record<string, string>,
  logFile: string,
): Promise<ServerProcess> {
  const port = await freePort();
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...args, ...portArgs(port)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  await waitUntilUp(child, url, logFile);
  const pid = child.pid as number;
  return {
    url,
    pid,
    sample: () => sampleUsage(pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function waitUntilUp(child: ChildProcess, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const up = await fetch(`${url}/health`).then(
      (r) => r.status < 500,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
}

/** CPU ticks (user + system) of a process, from /proc. */
function cpuTicks(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function sampleUsage(pid: number): () => Usage {
  const startTicks = cpuTicks(pid);
  const startTime = process.hrtime.bigint();
  let peak = rssMb(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 250);
  return () => {
    clearInterval(timer);
    peak = Math.max(peak, rssMb(pid));
    const seconds = Number(process.hrtime.bigint() - startTime) / 1e9;
    const cpuSeconds = (cpuTicks(pid) - startTicks) / CLOCK_TICKS_PER_SECOND;
    return { peakRssMb: peak, cpuPercent: (100 * cpuSeconds) / seconds };
  };
}
