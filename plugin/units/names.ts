// Unit names: their type, systemd's escapes, and the names systemd gives their D-Bus objects.

/** `foo.socket` → `socket`; `''` when the name has no suffix. */
export function unitType(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

/** Decodes systemd's C-style escapes in unit names (`my\x2dapp@1.socket` → `my-app@1.socket`). */
export function decodeUnitName(name: string): string {
  return name.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The unit name behind a systemd object path. systemd escapes every byte that is not
 * [A-Za-z0-9] as `_xx` (bus_label_escape), so this is exact for paths systemd returns.
 * `/org/freedesktop/systemd1/unit/foo_2esocket` → `foo.socket`; undefined for other paths.
 */
export function unitNameFromPath(path: string): string | undefined {
  if (!path.startsWith(UNIT_PATH_PREFIX)) return undefined;
  const label = path.slice(UNIT_PATH_PREFIX.length);
  if (label === '' || label.includes('/')) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const c = label[i]!;
    if (c === '_' && i + 2 < label.length && /^[0-9a-f]{2}$/.test(label.slice(i + 1, i + 3))) {
      bytes.push(parseInt(label.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const UNIT_PATH_PREFIX = '/org/freedesktop/systemd1/unit/';

/**
 * The object path systemd gives a unit (bus_label_escape): every byte of the UTF-8 name that is not
 * [A-Za-z0-9], and a leading digit, becomes `_xx`. Derived rather than stored: at 10,000 units the
 * paths and an index by path would be a tenth of the plugin's heap.
 */
export function unitPath(name: string): string {
  let label = '';
  const bytes = Buffer.from(name, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const alpha = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
    const digit = b >= 0x30 && b <= 0x39;
    label += alpha || (digit && i > 0) ? String.fromCharCode(b) : `_${b.toString(16).padStart(2, '0')}`;
  }
  return UNIT_PATH_PREFIX + label;
}
