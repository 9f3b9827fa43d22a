// Unit names: their type, systemd's escapes, and the names systemd gives their D-Bus objects.

/** `foo.socket` → `socket`; `''` when the name has no suffix. */
export function unitType(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Decodes systemd's `\xNN` escapes (`my\x2dapp@1.socket` → `my-app@1.socket`). They stand for
 * bytes, and systemd-escape writes non-ASCII text as its UTF-8 bytes, so runs of them are decoded
 * as UTF-8 (`caf\xc3\xa9.service` → `café.service`); bytes that are not UTF-8 become U+FFFD.
 */
export function decodeUnitName(name: string): string {
  if (!name.includes('\\x')) return name;
  return name.replace(/(?:\\x[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 4 + 2, i * 4 + 4), 16);
    return utf8.decode(bytes);
  });
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A name made only of what a unit name holds literally: shown as it is. */
const PLAIN_NAME = /^[A-Za-z0-9:_.@-]*$/;
/**
 * The parts of a unit name: a run of systemd's escapes (lower-case hex, as systemd-escape writes
 * them), a backslash that starts none, or characters no valid unit name holds.
 */
const NAME_PARTS = /((?:\\x[0-9a-f]{2})+)|(\\)|([^A-Za-z0-9:_.@\\-]+)/g;
/**
 * Decoded characters shown as themselves: non-ASCII text that can be seen, and parentheses (a
 * single space between two shown characters too, see below). Every other one keeps its escape:
 * what a unit name holds literally (so `my\x2dapp` does not read as `my-app`), the mark `/`, and
 * what the protocol or the agent's label and name sanitizers would change (`%` `*` `+` `;` `=`
 * `[` quotes, runs of spaces…).
 */
const SHOWN_DECODED = /^(?:[()]|(?![\p{C}\p{Z}])[^\x00-\x7f])$/u;

const bracketBytes = (text: string): string => [...Buffer.from(text, 'utf8')].map((b) => `/[${b.toString(16).padStart(2, '0')}]`).join('');

/**
 * The unit name for people (dimension names, labels, the Function's table): systemd's escapes
 * decoded where that reads better (`esc@my app-café.service`) and kept where the decoded character
 * could be mistaken for one written as such: `my\x2dapp.socket` is shown `my/x2dapp.socket`, not
 * the `my-app.socket` of another unit. The agent turns a `\` in a label into `/`; here an escape is
 * written that way on purpose, and so is a backslash that starts none (`a\b` → `a/b`); characters
 * no valid unit name holds are shown as `/[xx]` per byte. No two names get the same rendering
 * (test/unit/unit-names.test.ts reads every name back from its rendering), and it holds nothing
 * that the protocol, the agent's JSON or its label sanitizer (which maps `%` `*` `#` to `_` and
 * merges spaces) would change.
 */
export function readableUnitName(name: string): string {
  if (PLAIN_NAME.test(name)) return name;
  return name.replace(NAME_PARTS, (_, run: string | undefined, backslash: string | undefined, other: string, at: number) => {
    if (backslash) return '/';
    if (!run) return bracketBytes(other);
    const bytes = new Uint8Array(run.length / 4);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(run.slice(i * 4 + 2, i * 4 + 4), 16);
    let chars: string[];
    try {
      chars = [...strictUtf8.decode(bytes)];
    } catch {
      return run.replaceAll('\\', '/'); // not UTF-8: every byte keeps its escape
    }
    let out = '';
    chars.forEach((c, i) => {
      // Between two characters that are not spaces (next to the run: a name's own, never a space).
      const lone = c === ' ' && (i > 0 ? chars[i - 1] !== ' ' : at > 0) && (i < chars.length - 1 ? chars[i + 1] !== ' ' : at + run.length < name.length);
      out += lone || SHOWN_DECODED.test(c) ? c : [...Buffer.from(c, 'utf8')].map((b) => `/x${b.toString(16).padStart(2, '0')}`).join('');
    });
    return out;
  });
}

/**
 * A dimension id for a unit: its name with each `\` written as `+`. systemd's unit names are made
 * of `[A-Za-z0-9:_.@\-]` and `\`, so this is one-to-one (no unit name contains `+`), needs no
 * escaping in the protocol or the agent's JSON, and depends on the name alone: the same unit gets
 * the same id whatever other units exist or in which order they came.
 */
export function unitDimensionId(name: string): string {
  return name.replaceAll('\\', '+');
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

/** A short, stable hash of a name (FNV-1a, 8 hex digits): tells apart ids that clean up alike. */
export function nameHash(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
