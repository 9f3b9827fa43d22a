// A hostile local client for the forged-signal tests: sends signals that claim to be systemd's or
// the bus driver's, addressed straight to a connection (unicast: match rules do not filter those).
// Plain JS so that an unprivileged user (the tests run it as `nobody` via runuser) can run it with
// node alone.
//   node forge.mjs ADDRESS DESTINATION KIND [ARGS…]
//     failed PATH | active PATH         PropertiesChanged on org.freedesktop.systemd1.Unit
//     result PATH TEXT                  PropertiesChanged on org.freedesktop.systemd1.Socket (Result)
//     gone                              NameOwnerChanged: org.freedesktop.systemd1 left the bus
//     reloading                         Reloading(true), never followed by Reloading(false)
//     unitnew COUNT                     UnitNew of COUNT distinct made-up units
//     states COUNT PATH                 COUNT distinct made-up ActiveStates on PATH
//     every MS SECONDS PATH             `failed PATH` every MS for SECONDS
import dbus from 'dbus-next';

const [address, destination, kind, ...args] = process.argv.slice(2);
const UNIT = 'org.freedesktop.systemd1.Unit';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const PROPS = 'org.freedesktop.DBus.Properties';

const bus = dbus.sessionBus({ busAddress: address });
bus.on('error', (err) => {
  console.error(`forge: ${err.message}`);
  process.exit(2);
});
await new Promise((resolve) => bus.once('connect', resolve));

function signal(path, iface, member, signature, body) {
  bus.send(new dbus.Message({ type: dbus.MessageType.SIGNAL, destination, path, interface: iface, member, signature, body }));
}
const state = (path, activeState) =>
  signal(path, PROPS, 'PropertiesChanged', 'sa{sv}as', [UNIT, { ActiveState: new dbus.Variant('s', activeState), SubState: new dbus.Variant('s', activeState) }, []]);
/** Waits until the bus daemon has taken everything sent so far (it answers in order). */
const flush = () =>
  bus.call(new dbus.Message({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'GetId' }));

switch (kind) {
  case 'failed':
  case 'active':
    state(args[0], kind);
    break;
  case 'result':
    signal(args[0], PROPS, 'PropertiesChanged', 'sa{sv}as', ['org.freedesktop.systemd1.Socket', { Result: new dbus.Variant('s', args[1]) }, []]);
    break;
  case 'gone':
    signal('/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameOwnerChanged', 'sss', ['org.freedesktop.systemd1', ':1.1', '']);
    break;
  case 'reloading':
    signal('/org/freedesktop/systemd1', MANAGER, 'Reloading', 'b', [true]);
    break;
  case 'unitnew':
    for (let i = 0; i < Number(args[0]); i++) {
      signal('/org/freedesktop/systemd1', MANAGER, 'UnitNew', 'so', [`forged${i}.service`, `/org/freedesktop/systemd1/unit/forged${i}_2eservice`]);
      if (i % 1000 === 999) await flush();
    }
    break;
  case 'states':
    for (let i = 0; i < Number(args[0]); i++) {
      state(args[1], `weird${i}`);
      if (i % 1000 === 999) await flush();
    }
    break;
  case 'every': {
    const until = Date.now() + Number(args[1]) * 1000;
    while (Date.now() < until) {
      state(args[2], 'failed');
      await flush();
      await new Promise((r) => setTimeout(r, Number(args[0])));
    }
    break;
  }
  default:
    console.error(`forge: unknown kind ${kind}`);
    process.exit(2);
}
await flush();
// Linger a moment, as an attacker's long-lived client would: a report can then name its uid and pid.
await new Promise((r) => setTimeout(r, Number(process.env.FORGE_LINGER_MS ?? 1000)));
bus.disconnect();
