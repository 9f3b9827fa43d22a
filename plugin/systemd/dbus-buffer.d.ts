// dbus-next's body reader (lib/dbus-buffer.js), which has no types of its own: see bus.ts.
declare module 'dbus-next/lib/dbus-buffer.js' {
  const DBusBuffer: { prototype: object };
  export default DBusBuffer;
}
