// The bundle's stand-in for Node's crypto in dbus-next's handshake (scripts/build/crypto-on-demand.cjs):
// the cookie auth (DBUS_COOKIE_SHA1) must still get what it asks for, from Node's crypto loaded then.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const standIn = require('../../scripts/build/crypto-on-demand.cjs') as {
  createHash: typeof createHash;
  randomBytes: (size: number) => Buffer;
};

describe('crypto on demand (dbus-next cookie auth)', () => {
  it("hashes as Node's crypto does, and gives random bytes of the size asked", () => {
    const challenge = 'server:client:cookie';
    expect(standIn.createHash('sha1').update(challenge).digest('hex')).toBe(createHash('sha1').update(challenge).digest('hex'));
    const a = standIn.randomBytes(16);
    expect(a).toHaveLength(16);
    expect(a.equals(standIn.randomBytes(16))).toBe(false);
  });
});
