import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess } from '../local/processes';

describe('startProcess', () => {
  it('reports a binary that cannot be spawned as an error, without crashing the process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'realtime-edge-spawn-'));
    try {
      expect(() =>
        startProcess({ name: 'missing', command: join(dir, 'no-such-binary'), args: [], logPath: join(dir, 'log'), cwd: dir }),
      ).toThrow(/could not start missing/);
      // The spawn failure's 'error' event fires on a later tick; an unhandled one would fail this test.
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
