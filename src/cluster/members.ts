/**
 * The fleet's members as this instance sees them: what it tells the others about itself with
 * each heartbeat, the members read back (live: a heartbeat within memberTimeout), and the check
 * that no other process runs under its instance id.
 */
import { hostname } from 'node:os';
import type { Logger } from '../log.js';

export interface MemberView {
  instance: string;
  self: boolean;
  /** ms since its last heartbeat (as Redis saw it) */
  heartbeatAgeMs: number;
  live: boolean;
  host?: string;
  pid?: number;
  connections?: number;
  startedAt?: string;
}

type MemberInfo = Pick<MemberView, 'host' | 'pid' | 'connections' | 'startedAt'>;

export class Members {
  #members: MemberView[] = [];
  #live = 1;
  readonly #startedAt = new Date().toISOString();
  #duplicateLogged = false;
  #duplicateSeen = 0;

  constructor(
    readonly instance: string,
    readonly memberTimeout: number,
    private readonly log: Logger,
  ) {}

  /** The members read at the last heartbeat, by instance id. */
  get list(): MemberView[] {
    return this.#members;
  }

  /** Members seen live at the last heartbeat (1 while alone or Redis is away from the start). */
  get live(): number {
    return this.#live;
  }

  /** This instance's info JSON, as the heartbeat writes it. */
  info(connections: number): string {
    const info: MemberInfo = { host: hostname(), pid: process.pid, connections, startedAt: this.#startedAt };
    return JSON.stringify(info);
  }

  /** The heartbeat's members: instance, heartbeat age (ms), info JSON, ... */
  read(flat: (string | number)[]): void {
    const members: MemberView[] = [];
    let live = 0;
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const instance = String(flat[i]);
      const age = Number(flat[i + 1]);
      let info: Partial<MemberView> = {};
      try {
        info = JSON.parse(String(flat[i + 2])) as Partial<MemberView>;
      } catch {
        // an older or foreign instance: shown without its details
      }
      const isLive = age <= this.memberTimeout;
      if (isLive) live++;
      members.push({ ...info, instance, self: instance === this.instance, heartbeatAgeMs: age, live: isLive });
    }
    this.#members = members.sort((a, b) => a.instance.localeCompare(b.instance));
    this.#live = Math.max(1, live);
  }

  /**
   * Two processes under one instance id would overwrite each other's counts: say so, once.
   * `previous` is the info under this id before this heartbeat wrote its own, `ageMs` the age of
   * that heartbeat.
   */
  checkUnique(previous: string, ageMs: number): void {
    if (this.#duplicateLogged || previous === '' || ageMs > this.memberTimeout) return;
    let other: MemberInfo = {};
    try {
      other = JSON.parse(previous) as MemberInfo;
    } catch {
      return;
    }
    if (other.startedAt === this.#startedAt && other.pid === process.pid && other.host === hostname()) return;
    // Once can be this instance's own predecessor (a restart within memberTimeout); twice is another process.
    if (++this.#duplicateSeen < 2) return;
    this.#duplicateLogged = true;
    this.log.error(
      { instance: this.instance, other: { host: other.host, pid: other.pid, startedAt: other.startedAt } },
      'cluster: another running process uses this instance id; give every instance its own cluster.instance (or leave it out for hostname-pid)',
    );
  }
}
