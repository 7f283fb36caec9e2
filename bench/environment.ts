/** The machine and software a benchmark ran on, as RESULTS.md states them. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { openFileLimit } from './procfs';
import type { MachineInfo, Versions } from './results';

function firstLine(command: string, args: readonly string[], pattern?: RegExp): string {
  const result = spawnSync(command, [...args], { encoding: 'utf8' });
  if (result.error) return `unavailable (${result.error.message})`;
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  const match = pattern ? pattern.exec(text) : null;
  return (match ? match[1]! : text.split('\n').find((line) => line.trim() !== '') ?? '').trim();
}

function cpuModel(): string {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
}

export function machineInfo(): MachineInfo {
  return {
    nproc: os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryMegabytes: Math.round(os.totalmem() / 1024 / 1024),
    kernel: os.release(),
    loadAverageAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
    openFileLimit: openFileLimit(process.pid),
  };
}

function packageVersion(name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version;
}

export function softwareVersions(): Versions {
  return {
    node: process.version,
    nginx: firstLine('nginx', ['-v'], /nginx version: nginx\/(\S+)/),
    haproxy: firstLine('haproxy', ['-v'], /HAProxy version (\S+)/),
    deepstream: packageVersion('@deepstream/server'),
    deepstreamClient: packageVersion('@deepstream/client'),
    redis: firstLine('redis-server', ['--version'], /v=(\S+)/),
    openssl: firstLine('openssl', ['version']),
  };
}

export function loadAverage(): number {
  return os.loadavg()[0]!;
}
