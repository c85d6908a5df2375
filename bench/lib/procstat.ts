/** CPU time and memory of another process, read from Linux's /proc (undefined elsewhere). */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100; // the Linux default
    }
  }
  return ticks;
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / clockTicks();
  } catch {
    return undefined;
  }
}

/** User and system CPU seconds the process has used so far (user: its own code; system: the kernel's work for it). */
export function cpuTimes(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / clockTicks(), system: Number(fields[12]) / clockTicks() };
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds the whole machine has been busy so far (all CPUs, idle and iowait left out).
 * Minus what the bench's own processes used, it shows how much other work ran during a run.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, ...fields] = line.trim().split(/\s+/);
    const t = fields.slice(0, 8).map(Number); // user nice system idle iowait irq softirq steal
    return (t.reduce((a, b) => a + b, 0) - t[3]! - t[4]!) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface TcpMemory {
  /** Pages all TCP sockets of the machine hold now. */
  pages: number;
  /** tcp_mem: below `low` the kernel leaves buffers alone; above `pressure` it shrinks them. */
  low: number;
  pressure: number;
  /** TCP sockets in use. */
  sockets: number;
}

/**
 * The kernel's TCP memory and its limits. Other programs holding much data in socket buffers
 * (thousands of throttled connections, say) put every TCP socket under memory pressure, and
 * loopback throughput then collapses while the CPUs sit idle.
 */
export function tcpMemory(): TcpMemory | undefined {
  try {
    const sockstat = fs.readFileSync('/proc/net/sockstat', 'utf8');
    const m = /^TCP: inuse (\d+).* mem (\d+)/m.exec(sockstat);
    const limits = fs.readFileSync('/proc/sys/net/ipv4/tcp_mem', 'utf8').trim().split(/\s+/).map(Number);
    if (!m || limits.length < 3) return undefined;
    return { pages: Number(m[2]), low: limits[0]!, pressure: limits[1]!, sockets: Number(m[1]) };
  } catch {
    return undefined;
  }
}

/** Resident set size now (VmRSS) in bytes. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Open file descriptors of the process. */
export function openFds(pid: number): number | undefined {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** The soft and hard limits on open files of a process (Max open files in /proc/PID/limits). */
export function fdLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (!m) return undefined;
    const n = (v: string) => (v === 'unlimited' ? Infinity : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/**
 * The machine's TcpExt counters (/proc/net/netstat) named: ListenOverflows (a handshake completed
 * while the accept queue was full), SyncookiesFailed (a segment that matched no SYN cookie: a reset),
 * and so on. Machine-wide: every process counts.
 */
export function tcpExtCounters(names: readonly string[]): Record<string, number> | undefined {
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const keys = lines[0]?.split(/\s+/).slice(1) ?? [];
    const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
    return Object.fromEntries(names.map((n) => [n, values[keys.indexOf(n)] ?? NaN]));
  } catch {
    return undefined;
  }
}
