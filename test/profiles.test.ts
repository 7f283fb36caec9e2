import { centrifugoProfile } from '../servers/centrifugo';
import { deepstreamProfile } from '../servers/deepstream';
import { maxPingIntervalSeconds } from '../servers/profile';

describe('server profiles', () => {
  it('route every client path and health path of each server', () => {
    for (const profile of [deepstreamProfile, centrifugoProfile]) {
      const paths = profile.routes.map((r) => r.path);
      expect(paths.some((p) => profile.clientPath.startsWith(p))).toBe(true);
      expect(paths).toContain(profile.healthPath);
      expect(new Set(paths).size).toBe(paths.length);
    }
  });

  it('take the largest ping interval across profiles', () => {
    expect(maxPingIntervalSeconds([deepstreamProfile, centrifugoProfile])).toBe(30);
    expect(maxPingIntervalSeconds([centrifugoProfile])).toBe(25);
    expect(maxPingIntervalSeconds([])).toBe(0);
  });
});
