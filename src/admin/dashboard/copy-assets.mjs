// Part of `npm run build`: tsc emits the dashboard's modules into dist/src/admin/dashboard/; this
// copies the page and its style next to them, so that folder is all the admin server serves.
import { copyFileSync, readdirSync } from 'node:fs';

const from = new URL('./', import.meta.url);
const to = new URL('../../../dist/src/admin/dashboard/', import.meta.url);
for (const name of readdirSync(from)) {
  if (name.endsWith('.html') || name.endsWith('.css')) copyFileSync(new URL(name, from), new URL(name, to));
}
