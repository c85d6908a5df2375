/**
 * Schedule windows applied to tiers: which window of each tier holds now, the tiers as they are
 * with those windows' caps in place of their own, and when the next window starts or ends (the
 * plans' chore wakes then; nothing polls per connection).
 */
import { windowAt } from '../../config/schedule.js';
import type { LevelLimits, LevelOverride, ScheduleWindow, ShapingConfig, TierConfig } from '../../config/types.js';

/** A tier with window `w`'s caps in place of its own (only the keys the window gives). */
export function withWindow(tier: TierConfig, w: ScheduleWindow | undefined): TierConfig {
  if (!w) return tier;
  return {
    ...tier,
    connection: over(tier.connection, w.connection),
    customer: over(tier.customer, w.customer),
    total: over(tier.total, w.total),
  };
}

const over = (level: LevelLimits, o: LevelOverride | undefined): LevelLimits => (o ? { ...level, ...o } : level);

export class Schedules {
  /** tier name -> index of the window in force (tiers with a schedule only) */
  readonly active = new Map<string, number>();
  /** wall ms at which the next window of any tier starts or ends */
  next = Infinity;

  /**
   * `config` with each scheduled tier as its window in force at `wall` makes it; also remembers
   * those windows and when the next change comes.
   */
  effective(config: ShapingConfig, wall: number, zone: string): ShapingConfig {
    this.active.clear();
    this.next = Infinity;
    let tiers: Record<string, TierConfig> | undefined;
    for (const tier of Object.values(config.tiers)) {
      if (!tier.schedule) continue;
      const { active, next } = windowAt(tier.schedule, wall, zone);
      this.active.set(tier.name, active);
      if (next < this.next) this.next = next;
      if (active >= 0) {
        tiers ??= { ...config.tiers };
        tiers[tier.name] = withWindow(tier, tier.schedule[active]);
      }
    }
    return tiers ? { ...config, tiers } : config;
  }

  /** At `wall`: the tiers whose window changed, as they now are (and `next` moves on). */
  changed(config: ShapingConfig, wall: number, zone: string): TierConfig[] {
    const out: TierConfig[] = [];
    this.next = Infinity;
    for (const tier of Object.values(config.tiers)) {
      if (!tier.schedule) continue;
      const { active, next } = windowAt(tier.schedule, wall, zone);
      if (next < this.next) this.next = next;
      if (this.active.get(tier.name) === active) continue;
      this.active.set(tier.name, active);
      out.push(withWindow(tier, tier.schedule[active]));
    }
    return out;
  }
}
