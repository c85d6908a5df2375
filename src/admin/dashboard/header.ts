/** The header's figures: version, uptime, connections (active, total, refused), bytes each way, backend health. */
import type { StatsDocument } from '../../observe/stats-document.js';
import { byId, setField, setText } from './dom.js';
import { bytes, count, duration } from './format.js';

export function renderHeader(s: StatsDocument): void {
  setText(byId('version'), `v${s.version}`);
  setText(byId('uptime'), duration(s.uptimeSeconds));
  setField(byId('active'), count(s.connections.active), s.connections.active);
  setText(byId('total'), count(s.connections.total));
  // Refused at accept (abuse limits, descriptor budget) and by customer limits: the connections section has them by reason.
  const refused = Object.values(s.connections.refused).reduce((a, b) => a + b, s.connections.rejected);
  setField(byId('refused'), count(refused), refused);
  setText(byId('bytes-down'), bytes(s.bytes.down));
  setText(byId('bytes-up'), bytes(s.bytes.up));
  const targets = s.apps.flatMap((a) => a.targets);
  const healthy = targets.filter((t) => t.health === 'healthy').length;
  setText(byId('backends'), targets.length > 0 ? `${healthy}/${targets.length} healthy` : '\u2014');
}
