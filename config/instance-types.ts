/**
 * EC2 instance types: the one pattern stack config validates them with, and the CPU architecture
 * they run (which AMI a host boots, which release archive a node downloads). Components take the
 * architecture from here, so a type that passes config validation always has one.
 */
import type { CpuArchitecture } from '../servers/profile';

/** `FAMILY.SIZE`: t3.small, c6gn.large, u-6tb1.metal, c7i.metal-24xl. */
export const INSTANCE_TYPE_PATTERN = /^([a-z][a-z0-9-]*)\.([a-z0-9-]+)$/;

/** An instance type's architecture as EC2 and its AMIs name it. */
export type Ec2Architecture = 'x86_64' | 'arm64';

/** Graviton families carry a `g` right after the generation digit (t4g, m7g, c6gn, im4gn, x2gd);
 * `a1` is the first-generation exception. `g5` (NVIDIA on x86) has no such `g` and stays x86. */
export function architectureOfInstanceType(instanceType: string): Ec2Architecture {
  const match = INSTANCE_TYPE_PATTERN.exec(instanceType);
  if (!match) {
    throw new Error(
      `instanceType: "${instanceType}" is not an EC2 instance type; expected FAMILY.SIZE such as t3.small or m7g.large`,
    );
  }
  const family = match[1];
  return family === 'a1' || /^[a-z]+\d+g/.test(family) ? 'arm64' : 'x86_64';
}

/** The name `uname -m` prints on each EC2 architecture: what a node matches its release checksums by. */
const MACHINE_OF_ARCHITECTURE: Readonly<Record<Ec2Architecture, CpuArchitecture>> = { x86_64: 'x86_64', arm64: 'aarch64' };

/** The CPU architecture a node of this instance type reports (`uname -m`), e.g. `aarch64` for c7g.large. */
export function cpuArchitectureOfInstanceType(instanceType: string): CpuArchitecture {
  return MACHINE_OF_ARCHITECTURE[architectureOfInstanceType(instanceType)];
}
