import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderBootstrapScript } from '../servers/bootstrap';
import { localHealthUrl, openFileLimit, renderStartServiceStep, renderSystemdService, renderSystemUser } from '../servers/systemd';
import { makeTempDir, removeDir, shellcheck, systemdVerify } from './servers-helpers';

describe('openFileLimit', () => {
  it('keeps a 65536 floor, adds headroom above the target, and refuses targets the kernel cannot grant', () => {
    expect(openFileLimit()).toBe(65536);
    expect(openFileLimit(1000)).toBe(65536);
    expect(openFileLimit(100000)).toBe(104096);
    expect(openFileLimit(1_000_000)).toBe(1_004_096);
    expect(() => openFileLimit(0)).toThrow(/maxConnections: invalid input\n {2}\(input\) = 0: expected at least 1/);
    expect(() => openFileLimit(2_000_000)).toThrow(/expected at most 1000000/);
  });
});

describe('renderSystemdService', () => {
  it('renders a unit that systemd-analyze verify accepts without a single warning', () => {
    const dir = makeTempDir('systemd');
    try {
      const unit = renderSystemdService({
        description: 'test server (node test-0)',
        user: 'testsvc',
        execStart: ['/opt/test/bin/server', '--config', '/etc/test/config.json'],
        workingDirectory: '/opt/test',
        environmentFiles: ['/etc/realtime-edge/test.env'],
        environment: { NODE_ENV: 'production' },
        maxConnections: 150000,
        readWritePaths: ['/var/lib/test'],
      });
      mkdirSync(join(dir, 'etc/systemd/system'), { recursive: true });
      writeFileSync(join(dir, 'etc/systemd/system/test.service'), unit);
      expect(systemdVerify(dir, 'test.service', ['/opt/test/bin/server'])).toBe('');
      expect(unit).toMatch(/^LimitNOFILE=154096$/m);
      for (const line of ['Restart=always', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'CapabilityBoundingSet=', 'User=testsvc', 'StartLimitIntervalSec=0']) {
        expect(unit.split('\n')).toContain(line);
      }
    } finally {
      removeDir(dir);
    }
  });

  it('refuses words systemd would expand or split', () => {
    const spec = { description: 'x', user: 'svc', execStart: ['/bin/x'] };
    expect(() => renderSystemdService({ ...spec, execStart: ['/bin/x', '%h'] })).toThrow(/execStart\.1 = "%h": expected a word/);
    expect(() => renderSystemdService({ ...spec, execStart: ['/bin/x', '$HOME'] })).toThrow(/execStart\.1 = "\$HOME"/);
    expect(() => renderSystemdService({ ...spec, user: 'Root' })).toThrow(/user = "Root": expected a system user name/);
  });
});

describe('start step, health URL and system user', () => {
  it('render shellcheck-clean bash and point health checks at loopback when listening everywhere', () => {
    const script = renderBootstrapScript({
      description: 'start',
      setupSteps: [{ name: 'user', script: renderSystemUser('svc') }],
      steps: [renderStartServiceStep({ unit: 'svc.service', healthUrl: localHealthUrl(undefined, 8000, '/health') })],
    });
    expect(shellcheck(script)).toBe('');
    expect(script).toContain(' http://127.0.0.1:8000/health; do\n');
    expect(localHealthUrl('10.1.2.3', 6020, '/health-check')).toBe('http://10.1.2.3:6020/health-check');
    expect(localHealthUrl('fd00::1', 6020, '/h')).toBe('http://[fd00::1]:6020/h');
    expect(() => renderStartServiceStep({ unit: 'svc; reboot', healthUrl: 'http://127.0.0.1:1/' })).toThrow(/unit = "svc; reboot"/);
    expect(() => renderSystemUser('bad user')).toThrow(/user = "bad user"/);
  });
});
