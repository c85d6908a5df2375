import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';

/**
 * A CPU profile of the running proxy (the counterpart of Go's pprof): starts
 * now, and `stop()` writes it to `file` as a .cpuprofile that Chrome DevTools
 * (Performance tab, "Load profile") and VS Code open.
 */
export async function startProfile(file: string): Promise<{ stop(): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}
