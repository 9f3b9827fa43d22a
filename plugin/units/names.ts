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
  const prefix = '/org/freedesktop/systemd1/unit/';
  if (!path.startsWith(prefix)) return undefined;
  const label = path.slice(prefix.length);
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

/** The object path systemd gives a unit (bus_label_escape): the inverse of unitNameFromPath. */
export function unitPathFromName(name: string): string {
  let label = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    label += /[A-Za-z0-9]/.test(c) ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return `/org/freedesktop/systemd1/unit/${label}`;
}
