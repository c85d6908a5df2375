/**
 * Load shapes over time, as pure functions: given the shape and the seconds since the start,
 * the target level (a connection count or a message rate). No clock, no state: the engine asks
 * at every tick and the tests ask at chosen t.
 */

export const SHAPES = ['constant', 'step', 'sine', 'saw'] as const;
export type ShapeName = (typeof SHAPES)[number];

export interface Shape {
  shape: ShapeName;
  /** the peak (constant: the level) */
  max: number;
  /** the floor for sine and saw; where step starts is `step` */
  min: number;
  /** step: added every `stepEvery` seconds, starting at `step` */
  step: number;
  stepEvery: number;
  /** sine and saw: seconds per cycle */
  period: number;
}

/** The target level at `t` seconds, a real number in [min, max] (step: in [step, max]). */
export function levelAt(s: Shape, t: number): number {
  const t0 = Math.max(0, t);
  const span = s.max - s.min;
  switch (s.shape) {
    case 'constant':
      return s.max;
    case 'step':
      return Math.min(s.max, s.step * (1 + Math.floor(t0 / s.stepEvery)));
    case 'sine':
      // starts at the floor, peaks at half a period: a ramp up and down, not a jump to the middle
      return s.min + (span * (1 - Math.cos((2 * Math.PI * t0) / s.period))) / 2;
    case 'saw':
      return s.min + (span * (t0 % s.period)) / s.period;
  }
}

/** The connection count at `t`: a whole number, at least 1 so a run never goes idle. */
export function connectionsAt(s: Shape, t: number): number {
  return Math.max(1, Math.round(levelAt(s, t)));
}

/** Messages per second at `t` (0 would stall: at least a tenth of a message per second). */
export function rateAt(s: Shape, t: number): number {
  return Math.max(0.1, levelAt(s, t));
}

export function parseShape(name: string): ShapeName {
  const n = name === 'saw-tooth' || name === 'sawtooth' ? 'saw' : name;
  if (!(SHAPES as readonly string[]).includes(n)) throw new Error(`--shape: "${name}" is not one of ${SHAPES.join(', ')}`);
  return n as ShapeName;
}
