/**
 * The library's acceptance times (issue 13), from a separate project that depends on the package by
 * name (bench/lib/library-project.ts): 3 MiB through `new ShapingStream({ rate: '1MiB/s', burst:
 * '64KiB' })` takes 2.7–3.3 s; four 1 MiB streams under one `SharedCap({ rate: '2MiB/s', burst:
 * '64KiB' })` finish within 15 % of each other after 1.8–2.4 s. The test suite checks the bytes
 * (test/package); the times are measured here.
 */
import { libraryProject, type LibraryCheck } from './lib/library-project.js';
import { numberArg, type Args, type Result, type Scenario } from './lib/scenario.js';

const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

export const library: Scenario = {
  name: 'library',
  describe: 'the library from a project that depends on it by name: ShapingStream and SharedCap times (issue 13)',
  options: {
    rounds: { type: 'string', default: '1', description: 'how many times to pack, install and run the check' },
  },
  async run(args: Args): Promise<Result> {
    const rounds = numberArg(args, 'rounds');
    const runs: LibraryCheck[] = [];
    for (let i = 0; i < rounds; i++) runs.push(await libraryProject());
    const rows = runs.flatMap((r, i) => {
      const ends = r.shared.map((x) => x.ms);
      const first = Math.min(...ends);
      const last = Math.max(...ends);
      const spread = last / first - 1;
      const unchanged = r.single.unchanged && r.shared.every((x) => x.unchanged);
      const singleOk = r.single.ms >= 2700 && r.single.ms <= 3300;
      const sharedOk = first >= 1800 && last <= 2400 && spread <= 0.15;
      return [
        [`${i + 1}`, '3 MiB at 1 MiB/s', '2.7–3.3 s, unchanged', `${s(r.single.ms)}${r.single.unchanged ? ', unchanged' : ', CHANGED'}`, singleOk && r.single.unchanged ? 'PASS' : 'FAIL'],
        [
          `${i + 1}`,
          '4 × 1 MiB under 2 MiB/s',
          'ends 1.8–2.4 s, within 15 %',
          `ends ${ends.map((x) => (x / 1000).toFixed(3)).join(', ')} s (spread ${(spread * 100).toFixed(1)} %)${unchanged ? ', unchanged' : ', CHANGED'}`,
          sharedOk && unchanged ? 'PASS' : 'FAIL',
        ],
      ];
    });
    const last = runs[runs.length - 1]!;
    return {
      params: { rounds },
      tables: [{ title: 'Library acceptance (a separate project, the packed package installed by name, real clock)', columns: ['round', 'case', 'target', 'measured', 'result'], rows }],
      notes: [
        `Importing the package loads ${last.modules.length} modules (${last.modules.filter((m) => !m.startsWith('shaper-proxy/')).join(', ') || 'no dependency'} besides its own).`,
        `Tarball: ${last.tarball.files} files, ${(last.tarball.bytes / 1024).toFixed(0)} KiB. Steps (last round): pack ${s(last.steps.pack)}, install ${s(last.steps.install)}, tsc ${s(last.steps.tsc)}, check ${s(last.steps.check)}.`,
      ],
      data: runs,
    };
  },
};
