/** FileWatch: the TLS files a config names, watched on disk however a renewal writes them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FileWatch } from '../../src/server/reload.js';
import { tempDir, waitFor } from '../helpers.js';

/** A FileWatch whose reports the test reads; closed after the test. */
function watch(t: { after(fn: () => void): void }): { watch: FileWatch; reports: string[][] } {
  const reports: string[][] = [];
  const w = new FileWatch((files) => reports.push(files), 20);
  t.after(() => w.close());
  return { watch: w, reports };
}

test('a file written in place is reported; a file beside it that is not watched is not', async (t) => {
  const dir = await tempDir(t);
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await fs.writeFile(cert, 'one');
  await fs.writeFile(key, 'one');
  const { watch: w, reports } = watch(t);
  w.set([cert, key]);
  await fs.writeFile(path.join(dir, 'notes.txt'), 'not watched');
  await fs.writeFile(cert, 'two');
  await waitFor(() => reports.length > 0, 5000, 'a report');
  assert.deepEqual(reports[0], [cert]);
  // Dropped from the list: no longer reported; still watched: reported.
  w.set([key]);
  await fs.writeFile(cert, 'three');
  await fs.writeFile(key, 'two');
  await waitFor(() => reports.length > 1, 5000, 'a second report');
  assert.deepEqual(reports[1], [key]);
});

test('a symlink swapped to a new file (certbot live/ -> archive/) is reported, and so is the new target written in place', async (t) => {
  const dir = await tempDir(t);
  await fs.mkdir(path.join(dir, 'live'));
  await fs.mkdir(path.join(dir, 'archive'));
  const live = path.join(dir, 'live', 'fullchain.pem');
  await fs.writeFile(path.join(dir, 'archive', 'fullchain1.pem'), 'one');
  await fs.symlink('../archive/fullchain1.pem', live);
  const { watch: w, reports } = watch(t);
  w.set([live]);
  // certbot: a new archive file, then a new link renamed over the old one.
  await fs.writeFile(path.join(dir, 'archive', 'fullchain2.pem'), 'two');
  await fs.symlink('../archive/fullchain2.pem', `${live}.new`);
  await fs.rename(`${live}.new`, live);
  await waitFor(() => reports.length > 0, 5000, 'a report');
  assert.deepEqual(reports[0], [live]);
  // The file the link points to, edited in place (the directory of each link's target is watched too).
  w.set([live]);
  await fs.writeFile(path.join(dir, 'archive', 'fullchain2.pem'), 'two, edited');
  await waitFor(() => reports.length > 1, 5000, 'a second report');
  assert.deepEqual(reports[1], [live]);
});
