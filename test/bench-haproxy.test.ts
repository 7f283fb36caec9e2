/**
 * The benchmark's comparison HAProxy config (bench/haproxy.ts), checked with the real tools:
 * `haproxy -c` accepts it, and a running HAProxy enforces the same TLS policy as nginx (TLS 1.2/1.3,
 * forward-secret ciphers only) and relays bytes in tcp mode. No timing here: speed is bench/'s job.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeSelfSignedCertificate } from '../local/tls';
import { renderHaproxyConfig, type HaproxySpec } from '../bench/haproxy';
import { TLS_CIPHERS } from '../nginx/conf';
import { freePorts } from './helpers/nginx';

let dir = '';
let pemPath = '';
let haproxy: ChildProcess | undefined;
let echo: net.Server | undefined;
let ports: { http: number; https: number; tcp: number; tcpTls: number; backend: number };

function spec(overrides: Partial<HaproxySpec> = {}): HaproxySpec {
  return {
    listenAddress: '127.0.0.1',
    http: [
      { port: ports.http, tls: false },
      { port: ports.https, tls: true },
    ],
    tcp: [
      { port: ports.tcp, tls: false },
      { port: ports.tcpTls, tls: true },
    ],
    servers: [{ host: '127.0.0.1', port: ports.backend }],
    certificatePemPath: pemPath,
    connectSeconds: 3,
    idleSeconds: 75,
    maxConnections: 512,
    pidFile: path.join(dir, 'haproxy.pid'),
    ...overrides,
  };
}

function haproxyCheck(configText: string): { status: number | null; output: string } {
  const file = path.join(dir, `check-${Math.random().toString(36).slice(2)}.cfg`);
  fs.writeFileSync(file, configText);
  const result = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** One TLS handshake with openssl s_client; the client is allowed old protocols so refusals come from the server. */
function handshake(port: number, args: readonly string[]): { ok: boolean; output: string } {
  const result = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args], {
    input: '',
    encoding: 'utf8',
    timeout: 10_000,
  });
  const output = `${result.stdout}${result.stderr}`;
  return { ok: result.status === 0 && !/Cipher is \(NONE\)/.test(output), output };
}

function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`haproxy did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-haproxy-'));
  const certificate = makeSelfSignedCertificate(path.join(dir, 'tls'), { commonName: 'localhost', altNames: ['localhost', '127.0.0.1'] });
  pemPath = path.join(dir, 'server.pem');
  fs.writeFileSync(pemPath, fs.readFileSync(certificate.certificatePath, 'utf8') + fs.readFileSync(certificate.keyPath, 'utf8'), { mode: 0o600 });
  const [http, https, tcp, tcpTls, backend] = await freePorts(5);
  ports = { http: http!, https: https!, tcp: tcp!, tcpTls: tcpTls!, backend: backend! };
  // HAProxy resets its backend side when a TLS test client hangs up mid-handshake: without an error
  // handler that reset is an uncaught exception that takes the whole suite down.
  echo = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo!.listen(ports.backend, '127.0.0.1', resolve));
  const configPath = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(configPath, renderHaproxyConfig(spec()));
  haproxy = spawn('haproxy', ['-f', configPath, '-db'], { stdio: 'ignore' });
  await Promise.all([ports.http, ports.https, ports.tcp, ports.tcpTls].map(waitForPort));
});

afterAll(async () => {
  if (haproxy && haproxy.exitCode === null) {
    const exited = new Promise((resolve) => haproxy!.once('exit', resolve));
    haproxy.kill('SIGTERM');
    await exited;
  }
  await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('bench HAProxy config', () => {
  it('passes haproxy -c', () => {
    const result = haproxyCheck(renderHaproxyConfig(spec()));
    expect(result.output).toContain('Configuration file is valid');
    expect(result.status).toBe(0);
  });

  it('accepts TLS 1.2 with nginx\'s forward-secret ciphers and TLS 1.3', () => {
    for (const port of [ports.https, ports.tcpTls]) {
      const tls12 = handshake(port, ['-tls1_2', '-cipher', TLS_CIPHERS[0]]);
      expect(tls12.output).toContain(`Cipher is ${TLS_CIPHERS[0]}`);
      expect(tls12.ok).toBe(true);
      const tls13 = handshake(port, ['-tls1_3']);
      expect(tls13.output).toMatch(/New, TLSv1\.3/);
      expect(tls13.ok).toBe(true);
    }
  });

  it('refuses TLS 1.1 and ciphers without forward secrecy, as nginx does', () => {
    for (const port of [ports.https, ports.tcpTls]) {
      const tls11 = handshake(port, ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']);
      expect(tls11.ok).toBe(false);
      expect(tls11.output).toMatch(/alert protocol version/);
      const rsaKeyExchange = handshake(port, ['-tls1_2', '-cipher', 'AES128-GCM-SHA256']);
      expect(rsaKeyExchange.ok).toBe(false);
      expect(rsaKeyExchange.output).toMatch(/handshake failure/);
    }
  });

  it('relays bytes to the backend in tcp mode', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: ports.tcp });
      let received = '';
      socket.setTimeout(5000, () => socket.destroy(new Error('no echo through haproxy tcp mode')));
      socket.on('connect', () => socket.write('ping through haproxy'));
      socket.on('data', (chunk) => {
        received += chunk.toString('utf8');
        if (received.length >= 'ping through haproxy'.length) {
          socket.end();
          resolve(received);
        }
      });
      socket.on('error', reject);
    });
    expect(reply).toBe('ping through haproxy');
  });

  it.each<[string, Partial<HaproxySpec>, RegExp]>([
    ['no listener', { http: [], tcp: [] }, /http and tcp are both empty/],
    ['a port used twice', { tcp: [{ port: 4000, tls: false }], http: [{ port: 4000, tls: false }] }, /listener port 4000 is used twice/],
    ['TLS without a certificate', { certificatePemPath: undefined }, /has tls but certificatePemPath is unset/],
    ['an idle timeout below the connect timeout', { idleSeconds: 2 }, /idleSeconds 2 \/ connectSeconds 3; allowed: 0 < connect < idle/],
    ['no servers', { servers: [] }, /servers is empty/],
  ])('refuses %s, naming the field', (_name, overrides, message) => {
    expect(() => renderHaproxyConfig(spec(overrides))).toThrow(message);
  });
});
