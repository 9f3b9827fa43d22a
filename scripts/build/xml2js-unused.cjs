// Stands in for xml2js in the bundle. dbus-next needs it only to introspect D-Bus objects (proxy
// objects, exported services), which the plugin never does: it speaks to systemd with plain method
// calls. Leaving it out saves ~8 MB of RSS and ships no XML parser at all.
function unused() {
  throw new Error('xml2js is not part of the systemdunits.plugin bundle (D-Bus introspection is not used)');
}
module.exports = {
  Parser: function Parser() {
    this.parseString = unused;
  },
  Builder: function Builder() {
    this.buildObject = unused;
  },
};
