import { SERVER_BACKEND_NAMES, serverBackend, serverBackends } from '../servers/index';

describe('serverBackends registry', () => {
  it('maps each name to the backend whose profile carries that name', () => {
    expect(Object.keys(serverBackends).sort()).toEqual([...SERVER_BACKEND_NAMES].sort());
    for (const name of SERVER_BACKEND_NAMES) {
      expect(serverBackends[name].profile.name).toBe(name);
      expect(serverBackend(name)).toBe(serverBackends[name]);
      expect(serverBackends[name].defaultVersion).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('names the allowed backends when asked for an unknown one', () => {
    expect(() => serverBackend('socketio')).toThrow('server backend "socketio" is unknown; allowed: deepstream, centrifugo');
  });
});
