// Stands in for `crypto` in dbus-next's handshake (bundle only). The handshake requires Node's
// crypto as it loads, but uses it only for DBUS_COOKIE_SHA1, an auth the plugin needs only where
// EXTERNAL fails (never on a local system bus). Loaded at start, crypto and OpenSSL's tables cost
// ~1.1 MB of RSS (0.5 MB of it the process's own) for as long as the plugin runs; here they load
// on first use, so cookie auth still works where a bus asks for it.
let crypto;
const load = () => (crypto ??= require('node:crypto'));
module.exports = {
  createHash: (...args) => load().createHash(...args),
  randomBytes: (...args) => load().randomBytes(...args),
};
