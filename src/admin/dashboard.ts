/**
 * `GET /` (and `GET /dashboard`): one self-contained page — inline CSS and JS, no framework, no
 * request anywhere but `/stats` on the same admin server. It reads `/stats?history=1` once for
 * the last five minutes, then polls `/stats` every second and keeps its own history.
 *
 * The page's script is plain ES2017 without template literals, so it can live inside this
 * module's template string without escaping. Figures the tests read carry `data-field` (and
 * `data-tier` / `data-app`) attributes; rates also carry their raw bytes/s in `data-value`.
 */
import type { ServerResponse } from 'node:http';
import type { Request } from './router.js';

const STYLE = `
:root { --bg: #f5f6f8; --card: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e2e5eb;
  --accent: #2563eb; --cap: #d9480f; --ok: #16a34a; --bad: #dc2626; --unknown: #9ca3af; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 28px; padding: 14px 24px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; }
header .kv { color: #c3c8d4; }
header .kv b { color: #fff; font-weight: 600; font-variant-numeric: tabular-nums; }
#live { margin-left: auto; font-size: 12px; color: #c3c8d4; }
#live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--ok); margin-right: 6px; }
#live[data-state="down"]::before { background: var(--bad); }
#banner { background: var(--bad); color: #fff; padding: 6px 24px; font-weight: 600; }
#banner[hidden] { display: none; }
main { padding: 18px 24px 32px; max-width: 1500px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 22px 0 10px; }
.empty { color: var(--muted); }
#tiers { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 10px; }
.card h3 { margin: 0 0 6px; font-size: 16px; display: flex; justify-content: space-between; align-items: baseline; }
.card h3 small { font-size: 12px; font-weight: 400; color: var(--muted); }
.rates { display: flex; gap: 28px; flex-wrap: wrap; }
.rate .big { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.rate .sub, .caps { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.meter { height: 6px; background: var(--line); border-radius: 3px; margin: 8px 0 4px; overflow: hidden; }
.meter > div { height: 100%; width: 0; background: var(--accent); transition: width .4s; }
.meter > div.full { background: var(--cap); }
svg.chart { display: block; width: 100%; height: auto; margin-top: 6px; }
svg.chart text { font-size: 12px; fill: var(--muted); font-family: inherit; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.8; stroke-linejoin: round; }
svg.chart .area { fill: var(--accent); opacity: .12; stroke: none; }
svg.chart .cap { stroke: var(--cap); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.chart text.caplabel { fill: var(--cap); font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { padding: 5px 10px; text-align: left; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); background: #fafbfc; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.app-first td { border-top: 2px solid var(--line); }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; background: var(--unknown); }
.dot.healthy { background: var(--ok); }
.dot.unhealthy { background: var(--bad); }
.target { white-space: nowrap; font-variant-numeric: tabular-nums; }
.target .active { color: var(--muted); }
#foo dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px 16px; margin: 0; padding: 12px 16px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
#foo dt { font-size: 12px; color: var(--muted); }
#foo dd { margin: 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #12151c; --card: #1b1f29; --ink: #e6e8ee; --muted: #9098a9; --line: #2c3240; }
  th { background: #20252f; }
}
`;

// Plain ES2017, no template literals (this is a template string), no innerHTML with data.
const SCRIPT = `
(function () {
'use strict';
var POLL_MS = 1000;
var WINDOW_S = 300;
var MAX_POINTS = 300;
var SVG_NS = 'http://www.w3.org/2000/svg';
var W = 560, H = 200, L = 50, R = 12, T = 26, B = 24;
var LATENCIES = [['connect', 'connect'], ['ttfb', 'ttfb'], ['duration', 'duration'], ['shaperWait', 'shaper wait'], ['foo', 'Foo REQ\\u2192ACK']];

var samples = {};      // tier name -> [[t (s, this browser's clock), down B/s, up B/s], ...]
var cards = {};        // tier name -> elements of its card
var haveHistory = false;

function $(id) { return document.getElementById(id); }
function num(x) { return typeof x === 'number' && isFinite(x) ? x : null; }
function arr(x) { return Array.isArray(x) ? x : []; }
function obj(x) { return x !== null && typeof x === 'object' && !Array.isArray(x) ? x : {}; }
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}
function svg(tag, attrs) {
  var e = document.createElementNS(SVG_NS, tag);
  if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
function sig(x) {
  var a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}
function scaled(x, units, base) {
  var i = 0;
  while (Math.abs(x) >= base && i < units.length - 1) { x /= base; i++; }
  return (i === 0 ? String(Math.round(x)) : sig(x)) + ' ' + units[i];
}
function bits(bytesPerS) {
  var v = num(bytesPerS);
  return v === null ? '\\u2014' : scaled(v * 8, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'], 1000);
}
function byteRate(bytesPerS) {
  var v = num(bytesPerS);
  return v === null ? '\\u2014' : scaled(v, ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s'], 1000);
}
function bytes(n) {
  var v = num(n);
  return v === null ? '\\u2014' : scaled(v, ['B', 'kB', 'MB', 'GB', 'TB'], 1000);
}
function cap(bytesPerS) {
  var v = num(bytesPerS);
  return v !== null ? bits(v) + ' (' + byteRate(v) + ')' : bytesPerS === null ? 'unlimited' : '\\u2014';
}
function ms(x) {
  var v = num(x);
  if (v === null) return '\\u2014';
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}
function count(x) { var v = num(x); return v === null ? '\\u2014' : String(Math.round(v)); }
function duration(s) {
  var v = num(s);
  if (v === null) return '\\u2014';
  v = Math.floor(v);
  var d = Math.floor(v / 86400), h = Math.floor(v % 86400 / 3600), m = Math.floor(v % 3600 / 60), sec = v % 60;
  function two(n) { return (n < 10 ? '0' : '') + n; }
  return d > 0 ? d + 'd ' + h + 'h ' + two(m) + 'm' : h > 0 ? h + 'h ' + two(m) + 'm ' + two(sec) + 's' : m > 0 ? m + 'm ' + two(sec) + 's' : sec + 's';
}
function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
function setField(e, text, value) {
  setText(e, text);
  e.setAttribute('data-value', value === null || value === undefined ? '' : String(value));
}

// ---- history ------------------------------------------------------------------------------------

function push(name, t, down, up) {
  var h = samples[name] || (samples[name] = []);
  h.push([t, down, up]);
  while (h.length > MAX_POINTS || (h.length && h[0][0] < t - WINDOW_S - 5)) h.shift();
}

/** The server's samples, moved onto this browser's clock (its last sample is "now"). */
function seed(hist) {
  var h = obj(hist);
  var ts = arr(h.t);
  var last = num(ts[ts.length - 1]);
  if (last === null) return;
  var shift = Date.now() / 1000 - last;
  var tiers = obj(h.tiers);
  for (var name in tiers) {
    var s = obj(tiers[name]);
    var downs = arr(s.down), ups = arr(s.up);
    samples[name] = [];
    for (var i = 0; i < ts.length; i++) {
      var t = num(ts[i]);
      if (t !== null) push(name, t + shift, num(downs[i]), num(ups[i]));
    }
  }
}

// ---- chart --------------------------------------------------------------------------------------

function niceStep(x) {
  var p = Math.pow(10, Math.floor(Math.log10(x)));
  var f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}
function tick(v) { return String(parseFloat(v.toPrecision(3))); }

function makeChart(name) {
  var root = svg('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'data-tier': name, 'data-field': 'chart' });
  var title = svg('title'); title.textContent = 'tier ' + name + ': down rate over the last 5 minutes (Mbit/s)';
  root.appendChild(title);
  var c = { root: root, grid: svg('g'), area: svg('path', { class: 'area' }), line: svg('path', { class: 'line' }),
    cap: svg('line', { class: 'cap' }), capLabel: svg('text', { class: 'caplabel', 'text-anchor': 'end' }) };
  var unit = svg('text', { x: L - 6, y: 13, 'text-anchor': 'end', 'font-weight': 600 }); unit.textContent = 'Mbit/s';
  root.appendChild(c.grid); root.appendChild(c.area); root.appendChild(c.line);
  root.appendChild(c.cap); root.appendChild(c.capLabel); root.appendChild(unit);
  var labels = [[-300, '\\u22125m'], [-240, '\\u22124m'], [-180, '\\u22123m'], [-120, '\\u22122m'], [-60, '\\u22121m'], [0, 'now']];
  labels.forEach(function (l) {
    var x = L + (W - L - R) * (1 + l[0] / WINDOW_S);
    var t = svg('text', { x: x, y: H - 5, 'text-anchor': l[0] === 0 ? 'end' : l[0] === -300 ? 'start' : 'middle' });
    t.textContent = l[1];
    root.appendChild(t);
  });
  return c;
}

function drawChart(c, points, capDown) {
  var now = Date.now() / 1000;
  var mbit = function (bps) { return bps * 8 / 1e6; };
  var top = 0;
  points.forEach(function (p) { if (p[1] !== null && p[1] > top) top = p[1]; });
  var capV = num(capDown);
  if (capV !== null && capV > top) top = capV;
  top = mbit(top) * 1.08;
  if (!(top > 0)) top = 1;
  var step = niceStep(top / 4);
  top = Math.ceil(top / step) * step;
  var plotW = W - L - R, plotH = H - T - B;
  var y = function (bps) { return T + plotH * (1 - mbit(bps) / top); };
  var x = function (t) { return L + plotW * (1 - (now - t) / WINDOW_S); };

  while (c.grid.firstChild) c.grid.removeChild(c.grid.firstChild);
  for (var v = 0; v <= top + step / 2; v += step) {
    var gy = T + plotH * (1 - v / top);
    c.grid.appendChild(svg('line', { class: 'grid', x1: L, x2: W - R, y1: gy, y2: gy }));
    var label = svg('text', { x: L - 6, y: gy + 4, 'text-anchor': 'end' });
    label.textContent = tick(v);
    c.grid.appendChild(label);
  }

  // Gaps (a poll missed for more than 3 s) break the line.
  var line = '', area = '', run = [], prevT = null;
  var flush = function () {
    if (run.length === 0) return;
    line += 'M' + run.join('L');
    area += 'M' + run[0].split(',')[0] + ',' + y(0) + 'L' + run.join('L') + 'L' + run[run.length - 1].split(',')[0] + ',' + y(0) + 'Z';
    run = [];
  };
  points.forEach(function (p) {
    if (p[0] < now - WINDOW_S) return;
    if (p[1] === null || (prevT !== null && p[0] - prevT > 3)) flush();
    if (p[1] !== null) run.push(x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1));
    prevT = p[0];
  });
  flush();
  c.line.setAttribute('d', line || 'M0,0');
  c.area.setAttribute('d', area || 'M0,0');

  if (capV === null) {
    c.cap.setAttribute('visibility', 'hidden');
    c.capLabel.textContent = 'no cap';
    c.capLabel.setAttribute('x', W - R); c.capLabel.setAttribute('y', T - 10);
  } else {
    var cy = y(capV);
    c.cap.setAttribute('visibility', 'visible');
    c.cap.setAttribute('x1', L); c.cap.setAttribute('x2', W - R);
    c.cap.setAttribute('y1', cy); c.cap.setAttribute('y2', cy);
    c.capLabel.textContent = 'cap ' + bits(capV);
    c.capLabel.setAttribute('x', W - R - 4); c.capLabel.setAttribute('y', cy - 4);
  }
}

// ---- tier cards ---------------------------------------------------------------------------------

function field(name, key, cls) { return el('span', { class: cls || '', 'data-tier': name, 'data-field': key }); }

function makeCard(name) {
  var card = el('section', { class: 'card', 'data-tier': name });
  var h = el('h3', null, name);
  var meta = el('small');
  var conns = field(name, 'connections'), custs = field(name, 'customers');
  meta.appendChild(conns); meta.appendChild(document.createTextNode(' connections \\u00b7 '));
  meta.appendChild(custs); meta.appendChild(document.createTextNode(' customers'));
  h.appendChild(meta);
  card.appendChild(h);

  var rates = el('div', { class: 'rates' });
  var c = { card: card, conns: conns, custs: custs };
  [['rateDown', '\\u2193 down'], ['rateUp', '\\u2191 up']].forEach(function (r) {
    var box = el('div', { class: 'rate' });
    box.appendChild(el('div', { class: 'sub' }, r[1]));
    c[r[0]] = field(name, r[0], 'big');
    c[r[0] + 'Bytes'] = field(name, r[0] + 'Bytes', 'sub');
    box.appendChild(c[r[0]]);
    box.appendChild(el('div')).appendChild(c[r[0] + 'Bytes']);
    rates.appendChild(box);
  });
  card.appendChild(rates);

  var meter = el('div', { class: 'meter', title: 'down rate / tier cap' });
  c.meter = el('div', { 'data-tier': name, 'data-field': 'utilisation' });
  meter.appendChild(c.meter);
  card.appendChild(meter);

  var caps = el('div', { class: 'caps' });
  c.capDown = field(name, 'capDown'); c.capUp = field(name, 'capUp'); c.capMore = field(name, 'capMore');
  caps.appendChild(document.createTextNode('tier cap \\u2193 ')); caps.appendChild(c.capDown);
  caps.appendChild(document.createTextNode(' \\u00b7 \\u2191 ')); caps.appendChild(c.capUp);
  caps.appendChild(el('br')); caps.appendChild(c.capMore);
  card.appendChild(caps);

  c.chart = makeChart(name);
  card.appendChild(c.chart.root);
  return c;
}

function renderTiers(tiers) {
  var box = $('tiers');
  var seen = {};
  tiers.forEach(function (t, i) {
    t = obj(t);
    if (typeof t.name !== 'string') return;
    var name = t.name;
    seen[name] = true;
    var c = cards[name] || (cards[name] = makeCard(name));
    if (box.children[i] !== c.card) box.insertBefore(c.card, box.children[i] || null);
    setText(c.conns, count(t.connections));
    setText(c.custs, count(t.customers));
    setField(c.rateDown, bits(t.rateDown), num(t.rateDown));
    setField(c.rateUp, bits(t.rateUp), num(t.rateUp));
    setText(c.rateDownBytes, byteRate(t.rateDown));
    setText(c.rateUpBytes, byteRate(t.rateUp));
    setField(c.capDown, cap(t.capDown), num(t.capDown));
    setField(c.capUp, cap(t.capUp), num(t.capUp));
    var more = [];
    if (num(t.customerCapDown) !== null) more.push('per customer \\u2193 ' + bits(t.customerCapDown));
    if (num(t.connectionCapDown) !== null) more.push('per connection \\u2193 ' + bits(t.connectionCapDown));
    setText(c.capMore, more.join(' \\u00b7 '));
    var capV = num(t.capDown), down = num(t.rateDown);
    var share = capV !== null && capV > 0 && down !== null ? Math.min(1, down / capV) : 0;
    c.meter.style.width = (share * 100).toFixed(1) + '%';
    c.meter.className = share >= 0.95 ? 'full' : '';
    c.meter.setAttribute('data-value', capV !== null && down !== null ? share.toFixed(3) : '');
    drawChart(c.chart, samples[name] || [], t.capDown);
  });
  for (var name in cards) {
    if (!seen[name]) { cards[name].card.remove(); delete cards[name]; }
  }
  $('tiers-empty').hidden = tiers.length > 0;
}

// ---- apps, customers, Foo -----------------------------------------------------------------------

function renderApps(apps) {
  var body = $('apps-body');
  while (body.firstChild) body.removeChild(body.firstChild);
  apps.forEach(function (a) {
    a = obj(a);
    var lat = obj(a.latency);
    var metrics = LATENCIES.filter(function (m) { return (num(obj(lat[m[0]]).count) || 0) > 0; });
    var rows = Math.max(1, metrics.length);
    var appName = typeof a.name === 'string' ? a.name : '?';
    for (var i = 0; i < rows; i++) {
      var tr = el('tr', { 'data-app': appName, class: i === 0 ? 'app-first' : '' });
      if (i === 0) {
        tr.appendChild(el('td', { rowspan: rows }, appName));
        tr.appendChild(el('td', { class: 'n', rowspan: rows, 'data-app': appName, 'data-field': 'connections' }, count(a.connections)));
        var td = el('td', { rowspan: rows });
        arr(a.targets).forEach(function (tg) {
          tg = obj(tg);
          var health = tg.health === 'healthy' || tg.health === 'unhealthy' ? tg.health : 'unknown';
          var div = el('div', { class: 'target', 'data-target': String(tg.address), 'data-health': health, title: health });
          div.appendChild(el('span', { class: 'dot ' + health }));
          div.appendChild(document.createTextNode(String(tg.address) + ' '));
          div.appendChild(el('span', { class: 'active' }, '(' + count(tg.active) + ' active)'));
          td.appendChild(div);
        });
        tr.appendChild(td);
      }
      var m = metrics[i];
      if (m) {
        var h = obj(lat[m[0]]);
        tr.appendChild(el('td', null, m[1]));
        tr.appendChild(el('td', { class: 'n' }, count(h.count)));
        ['p50', 'p90', 'p99', 'p999', 'max'].forEach(function (p) {
          tr.appendChild(el('td', { class: 'n', 'data-app': appName, 'data-field': m[0] + '.' + p }, ms(h[p])));
        });
      } else {
        tr.appendChild(el('td', { colspan: 7, class: 'empty' }, 'no latency samples yet'));
      }
      body.appendChild(tr);
    }
  });
  $('apps-empty').hidden = apps.length > 0;
}

function renderCustomers(customers) {
  var body = $('customers-body');
  while (body.firstChild) body.removeChild(body.firstChild);
  var top = customers.map(obj).sort(function (a, b) { return (num(b.rateDown) || 0) - (num(a.rateDown) || 0); }).slice(0, 10);
  top.forEach(function (c) {
    var tr = el('tr', { 'data-customer': String(c.id) });
    tr.appendChild(el('td', null, String(c.id)));
    tr.appendChild(el('td', null, typeof c.tier === 'string' ? c.tier : '\\u2014'));
    tr.appendChild(el('td', { class: 'n' }, count(c.connections)));
    tr.appendChild(el('td', { class: 'n' }, bits(c.rateDown)));
    tr.appendChild(el('td', { class: 'n' }, bits(c.rateUp)));
    body.appendChild(tr);
  });
  $('customers').hidden = top.length === 0;
  setText($('customers-more'), customers.length > top.length ? 'top ' + top.length + ' of ' + customers.length + ' by down rate' : '');
}

var FOO = [['msg_total', 'messages'], ['msg_req', 'requests'], ['msg_ack', 'acks'], ['msg_nak', 'naks'], ['msg_invalid', 'invalid'],
  ['request_rate_1s', 'requests/s (1 s)'], ['request_rate_10s', 'requests/s (10 s)'], ['response_rate_1s', 'responses/s (1 s)'], ['response_rate_10s', 'responses/s (10 s)']];

function renderFoo(foo) {
  foo = obj(foo);
  var show = (num(foo.msg_total) || 0) > 0;
  $('foo').hidden = !show;
  if (!show) return;
  var dl = $('foo-list');
  while (dl.firstChild) dl.removeChild(dl.firstChild);
  FOO.forEach(function (f) {
    var v = num(foo[f[0]]);
    var box = el('div');
    box.appendChild(el('dt', null, f[1]));
    box.appendChild(el('dd', { 'data-field': 'foo.' + f[0] }, v === null ? '\\u2014' : f[0].indexOf('rate') >= 0 ? sig(v) : String(v)));
    dl.appendChild(box);
  });
}

// ---- polling ------------------------------------------------------------------------------------

function render(s) {
  s = obj(s);
  var conns = obj(s.connections), b = obj(s.bytes);
  setText($('uptime'), duration(s.uptimeSeconds));
  setField($('active'), count(conns.active), num(conns.active));
  setText($('total'), count(conns.total));
  setText($('rejected'), count(conns.rejected));
  setText($('bytes-down'), bytes(b.down));
  setText($('bytes-up'), bytes(b.up));

  var apps = arr(s.apps), healthy = 0, targets = 0;
  apps.forEach(function (a) { arr(obj(a).targets).forEach(function (t) { targets++; if (obj(t).health === 'healthy') healthy++; }); });
  setText($('backends'), targets ? healthy + '/' + targets + ' healthy' : '\\u2014');

  var tiers = arr(s.tiers);
  if (!haveHistory && s.history) seed(s.history);
  var now = Date.now() / 1000;
  tiers.forEach(function (t) { t = obj(t); if (typeof t.name === 'string') push(t.name, now, num(t.rateDown), num(t.rateUp)); });
  renderTiers(tiers);
  renderApps(apps);
  renderCustomers(arr(s.customers));
  renderFoo(s.foo);
}

function connected(ok, why) {
  var banner = $('banner'), live = $('live');
  banner.hidden = ok;
  banner.setAttribute('data-state', ok ? 'connected' : 'disconnected');
  if (!ok) setText(banner, 'disconnected from the proxy (' + why + ') \\u2014 retrying every second');
  live.setAttribute('data-state', ok ? 'up' : 'down');
  setText(live, ok ? 'updated ' + new Date().toLocaleTimeString() : 'disconnected');
}

function poll() {
  var started = Date.now();
  var ctrl = new AbortController();
  var timer = setTimeout(function () { ctrl.abort(); }, 5000);
  var token = new URLSearchParams(location.search).get('token');
  fetch(haveHistory ? '/stats' : '/stats?history=1', {
    cache: 'no-store',
    signal: ctrl.signal,
    headers: token ? { authorization: 'Bearer ' + token } : {},
  })
    .then(function (res) {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    })
    .then(function (s) {
      render(s);
      haveHistory = true;
      connected(true);
    })
    .catch(function (err) {
      connected(false, err && err.name === 'AbortError' ? 'timed out' : err && err.message ? err.message : String(err));
    })
    .then(function () {
      clearTimeout(timer);
      setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
    });
}
poll();
})();
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shaper-proxy</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>shaper-proxy</h1>
  <span class="kv">up <b id="uptime" data-field="uptime">—</b></span>
  <span class="kv">active connections <b id="active" data-field="active">—</b></span>
  <span class="kv">total <b id="total" data-field="total">—</b></span>
  <span class="kv">rejected <b id="rejected" data-field="rejected">—</b></span>
  <span class="kv">↓ <b id="bytes-down" data-field="bytesDown">—</b> ↑ <b id="bytes-up" data-field="bytesUp">—</b></span>
  <span class="kv">backends <b id="backends" data-field="backends">—</b></span>
  <span id="live" data-state="down">connecting…</span>
</header>
<div id="banner" data-state="connecting" role="alert" hidden></div>
<main>
  <h2>Tiers — throughput against the cap, last 5 minutes</h2>
  <div id="tiers"></div>
  <p id="tiers-empty" class="empty" hidden>No tiers configured.</p>

  <h2>Apps — backends and latency (ms)</h2>
  <table id="apps">
    <thead><tr><th>app</th><th class="n">conns</th><th>targets</th><th>latency</th><th class="n">count</th>
      <th class="n">p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">p99.9</th><th class="n">max</th></tr></thead>
    <tbody id="apps-body"></tbody>
  </table>
  <p id="apps-empty" class="empty" hidden>No apps.</p>

  <section id="customers" hidden>
    <h2>Customers <small id="customers-more"></small></h2>
    <table>
      <thead><tr><th>customer</th><th>tier</th><th class="n">conns</th><th class="n">↓ rate</th><th class="n">↑ rate</th></tr></thead>
      <tbody id="customers-body"></tbody>
    </table>
  </section>

  <section id="foo" hidden>
    <h2>Foo protocol</h2>
    <dl id="foo-list"></dl>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const BODY = Buffer.from(HTML, 'utf8');

/** Only this page and `/stats` on the same origin; nothing from anywhere else. */
const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

/** The dashboard page: one self-contained HTML document. */
export function dashboardHtml(): string {
  return HTML;
}

/** Router handler for `GET /` and `GET /dashboard`: writes the page itself, returns undefined. */
export function serveDashboard(_req: Request, res: ServerResponse): undefined {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': BODY.length,
    'cache-control': 'no-store',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
  });
  res.end(BODY);
  return undefined;
}
