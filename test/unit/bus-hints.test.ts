import { describe, expect, it } from 'vitest';
import { BusCallError, CLOSED_ERROR } from '../../plugin/systemd/bus.js';
import { busHint } from '../../plugin/systemd/sync.js';

// Issue 15, item 6: a hint only where it helps the operator find the cause.
describe('busHint', () => {
  const lost = (reason: string) => new BusCallError(reason, CLOSED_ERROR);

  it('asks about systemd and /run/dbus when there is no socket', () => {
    expect(busHint(lost('connect ENOENT /run/dbus/system_bus_socket'))).toMatch(/is systemd running\? .*DBUS_SYSTEM_BUS_ADDRESS/);
  });

  it('asks about dbus when nothing listens, and about permissions when the socket is closed to us', () => {
    expect(busHint(lost('connect ECONNREFUSED /run/dbus/system_bus_socket'))).toMatch(/is dbus running\?/);
    expect(busHint(Object.assign(new Error('connect EACCES /x'), { code: 'EACCES' }))).toMatch(/may not open that socket/);
  });

  it('gives none where the message already says what to change, or where it could only mislead', () => {
    expect(busHint(lost('only a unix:path= address is supported'))).toBeUndefined();
    expect(busHint(lost('handshake timed out'))).toBeUndefined();
  });
});
