/**
 * Every number that decides when and how many bytes a flow is granted, in one place: bucket
 * sizes, the scheduler's quantum and timer batching, the smallest write worth waking for, and the
 * socket flows' read sizes. The scheduler, the shaping tree, the socket flow and the library's
 * ShapingStream all take them from here.
 */

/**
 * Smallest amount worth waking up for: a node waits until it has this many tokens (or its flow's
 * whole queue, when that is less), so slow buckets send a few larger writes instead of many tiny ones.
 */
export const MIN_SEND = 4 * 1024;

/** Base deficit round-robin quantum at a shared node; bigger for fast buckets (see quantumFor). */
export const BASE_QUANTUM = 4 * 1024;
/** The quantum at a node without a bucket (nothing to cut finely: serve in large turns). */
export const UNLIMITED_QUANTUM = 64 * 1024;
/** A fast bucket's quantum is this many ms of its rate (when more than BASE_QUANTUM). */
export const QUANTUM_MS = 0.5;

/** Parked nodes are woken in batches no closer together than this (ms): one timer, few wake-ups. */
export const MIN_TICK = 2;
/** A parked node due within this many ms is woken now (timers fire a little early or late). */
export const UNPARK_SLACK_MS = 0.5;

/**
 * A parked flow that prefers large grants (a native relay direction) may be woken this fraction of
 * its wait early, taking a grant that much smaller, or that much late when little waits: one timer
 * then serves every such flow due within the window. A thousand slow flows cost tens of timer
 * wake-ups a second instead of hundreds. Tokens are never granted before they are earned, and a
 * late wake never lets the bucket overflow.
 */
export const EARLY_FRACTION = 0.1;
/** ...but never more than this many ms of its rate. */
export const MAX_EARLY_MS = 50;

/**
 * The fewest tokens such a flow, waiting for `need` tokens refilled at `rate` bytes/s, accepts:
 * `need` less EARLY_FRACTION of it (at most MAX_EARLY_MS of the rate), less the timer slack.
 */
export function flowLow(need: number, rate: number): number {
  const early = Math.min(need * EARLY_FRACTION, (rate * MAX_EARLY_MS) / 1000);
  return need - early - (rate * UNPARK_SLACK_MS) / 1000;
}

/**
 * The grant a flow preferring large grants takes when its window is open: `low` tokens less up to
 * GRANT_SPREAD of them (by `spread`, the node's place in [0, 1)), however many its bucket holds.
 * What stays in the bucket keeps the flow's cadence its own: had it taken all, its next window
 * would be set by the wake that served it, and flows woken together would stay together, the
 * grants of a thousand connections in one burst twice a second. The spread gives equal flows
 * slightly different cadences, so the phases they started with (connections opened together)
 * drift apart too. 1,000 connections at 64 KiB/s, bytes delivered per 100 ms: coefficient of
 * variation 0.60-0.85 taking all, 0.21-0.23 taking `low`, 0.15-0.17 with the spread (nginx: 0.24).
 */
export function largeGrant(low: number, spread: number): number {
  return Math.floor(low * (1 - GRANT_SPREAD * spread));
}

/** See largeGrant: grants of equal flows differ by up to this fraction. */
export const GRANT_SPREAD = 0.05;

/**
 * The smallest bucket: 32 KiB, two of the flows' 16 KiB reads, so a bucket can pass a whole read
 * at once while keeping half a bucket of slack for a late timer.
 */
export const MIN_BURST = 32 * 1024;
/** Buckets also hold at least this many ms of their rate, so timer lateness costs no throughput. */
export const MIN_BURST_MS = 10;

/**
 * How much a socket flow holds before its source stops reading: one read of 16 KiB. Fixed, because
 * a connection's share of a shared bucket can be tiny whatever its own cap, and a thousand of them
 * must stay cheap; at 1 Gbit/s that is still only ~7,600 reads a second.
 */
export const READ_SIZE = 16 * 1024;
/** Bytes of a read that shows a connection carries real traffic: it gets a read buffer of its own (see ownedRead). */
export const FIRST_READ = 1024;

/**
 * Bucket size for `rate` bytes/s: the bandwidth-delay product rate × rtt, but never below
 * MIN_BURST nor below MIN_BURST_MS of the rate; an explicit burst wins.
 */
export function burstFor(rate: number, rttMs: number, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  return Math.max((rate * rttMs) / 1000, MIN_BURST, (rate * MIN_BURST_MS) / 1000);
}

/**
 * The smallest DRR quantum at a shared node with native relay directions among its children (flows
 * preferring large grants): 8 KiB. A turn there is a splice(2) and, for a bulk transfer, a refill
 * of its pipe, so larger turns mean fewer system calls and event-loop wake-ups per byte. Every
 * child of the node gets the same larger turn (the shares stay exact), and a round is still short:
 * 1,000 connections under 10 MiB/s get a turn every 0.8 s, so in any 8 s each has its due within
 * one turn (Jain's index at least 0.997).
 */
export const LARGE_QUANTUM = 8 * 1024;

/**
 * The DRR quantum at a shared node of `rate` bytes/s (undefined: no bucket): BASE_QUANTUM, or
 * QUANTUM_MS of the rate when that is more, so a fast bucket is not cut into tiny writes; at least
 * LARGE_QUANTUM when `large` (children that prefer large grants).
 */
export function quantumFor(rate: number | undefined, large = false): number {
  if (rate === undefined) return UNLIMITED_QUANTUM;
  const q = Math.ceil((rate * QUANTUM_MS) / 1000);
  const least = large ? LARGE_QUANTUM : BASE_QUANTUM;
  return q > least ? q : least;
}

/**
 * Tokens a flow's own bucket (of `size` bytes) must hold before it sends: half the bucket, at least
 * MIN_SEND, at most the bucket: fewer, larger writes, with half a bucket of slack for a late timer.
 * (A flow with less waiting than this sends what it has once it has the tokens for it.)
 */
export function flowNeed(size: number, rate = 0, preferred = 0): number {
  const half = Math.min(Math.max(MIN_SEND, size / 2), size);
  if (preferred <= half) return half;
  // A flow that prefers larger grants (a native relay direction: a grant is a syscall, and bytes
  // wait in a kernel pipe) gets up to the whole bucket less GRANT_SLACK_MS of its rate: a timer
  // that late still loses no tokens.
  return Math.max(half, Math.min(preferred, size - (rate * GRANT_SLACK_MS) / 1000));
}

/** What a flow preferring large grants leaves of its bucket as slack for a late timer (ms of its rate). */
export const GRANT_SLACK_MS = 5;

/**
 * Tokens a shared node must hold before it serves its children: MIN_SEND, or its whole bucket if
 * smaller. With `largeKids` children that prefer large grants (native relay directions, whose
 * queues are pipes of 64 KiB): LARGE_WAIT_MS of its `rate`, at least a turn (LARGE_QUANTUM) and at
 * most half a turn per such child (a pass then never empties their queues, which would cost the
 * ones that ran dry their turn), and at most half its bucket (a late timer loses no tokens).
 */
export function nodeNeed(size: number, largeKids = 0, rate = 0): number {
  if (largeKids === 0) return Math.min(MIN_SEND, size);
  const wait = Math.min((rate * LARGE_WAIT_MS) / 1000, (largeKids * LARGE_QUANTUM) / 2);
  return Math.min(Math.max(LARGE_QUANTUM, wait), Math.max(size / 2, MIN_SEND), size);
}

/**
 * How long a shared node with large-grant children lets tokens gather (see nodeNeed): 20 ms, 50
 * passes a second at most. 1,000 connections sharing 10 MiB/s, five alternating runs: native CPU
 * 0.33-0.47 CPU-s per 10 s (median 0.37) against 0.37-0.52 (median 0.47) with 10 ms.
 */
export const LARGE_WAIT_MS = 20;

/**
 * Grants under a peak rate are sized by PEAK_GATE_MS of it (at least MIN_BURST), like tc tbf's
 * small peakrate bucket: a full main bucket goes out in small steps at the peak, not at once.
 */
export const PEAK_GATE_MS = MIN_BURST_MS;
/**
 * What the peak bucket holds: PEAK_CATCHUP_MS of the peak. A flow held up (a late timer, a busy
 * CPU, a source that paused) catches up to its peak instead of losing that time, as tc tbf's
 * larger minburst does for a coarse timer; in any window of T seconds it still sends at most
 * peak × T plus this. On a loaded 2-core machine 10 ms lost 1-7 % of the peak (bench plans).
 */
export const PEAK_CATCHUP_MS = 50;

/** The grant size under a peak of `peak` bytes/s (see PEAK_GATE_MS). */
export function peakGateFor(peak: number): number {
  return Math.max(MIN_BURST, (peak * PEAK_GATE_MS) / 1000);
}

/** The size of a peak bucket (see PEAK_CATCHUP_MS), at least MIN_BURST. */
export function peakBurstFor(peak: number): number {
  return Math.max(MIN_BURST, (peak * PEAK_CATCHUP_MS) / 1000);
}
