/**
 * The config file in force and the last reload: in the header, one word (loaded, reloaded, or
 * failed); in its section, the file, its hash, when it was loaded, the reload counts, and a failed
 * reload's problems by key path. Hidden for a proxy not started from a file.
 */
import type { ConfigFileStats } from '../../observe/stats-document.js';
import { byId, el, setText } from './dom.js';
import { ago, count } from './format.js';

export function renderConfig(c: ConfigFileStats | null): void {
  const pill = byId('reload');
  byId('config').hidden = c === null;
  pill.hidden = c === null;
  if (!c) return;
  const last = c.lastReload;
  const state = last === null ? 'loaded' : last.ok ? 'reloaded' : 'failed';
  pill.setAttribute('data-state', state);
  setText(pill, state === 'failed' ? `reload failed ${ago(last?.at)}` : `config ${state} ${ago(state === 'loaded' ? c.loadedAt : last?.at)}`);

  setText(byId('config-file'), c.file);
  const hash = byId('config-hash');
  hash.title = c.hash ?? '';
  setText(hash, c.hash ? c.hash.slice(0, 12) : '\u2014');
  setText(byId('config-loaded'), `${new Date(c.loadedAt).toLocaleString()} (${ago(c.loadedAt)})`);
  setText(byId('config-reloads'), `${count(c.reloads.success)} ok \u00b7 ${count(c.reloads.failure)} failed`);
  const result = byId('config-last');
  result.setAttribute('data-state', state);
  setText(result, last === null ? 'none since the start' : `${last.ok ? 'ok' : 'failed: the old config stays in force'} \u00b7 ${ago(last.at)} \u00b7 ${last.why}`);
  const errors = byId('config-errors');
  errors.replaceChildren(...(last && !last.ok ? (last.errors ?? []).map((e) => el('li', {}, e)) : []));
  errors.hidden = errors.children.length === 0;
}
