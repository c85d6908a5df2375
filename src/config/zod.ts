/**
 * zod, loaded with require(). Its ES module build is about 100 files, and Node 20's ES module
 * loader opens the files a module imports all at once: under a low descriptor limit (`ulimit -n
 * 64`, test/e2e/emfile.test.ts) the proxy would die with EMFILE before it starts. The CommonJS
 * build is read one file at a time. Types come from `import type * as Zod from 'zod'`.
 */
import { createRequire } from 'node:module';
import type * as Zod from 'zod';

export const z = createRequire(import.meta.url)('zod') as typeof Zod;
