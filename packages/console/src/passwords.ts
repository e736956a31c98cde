import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Password hashes: scrypt (node:crypto) with N=2^15, r=8, p=1 and a 16-byte salt, stored with
 * their parameters (`scrypt$N$r$p$salt$hash`, base64url) so that stronger ones can be adopted later
 * without making the stored hashes unreadable.
 */
const N = 2 ** 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
// scrypt needs 128*N*r bytes; node's default limit (32 MiB) is exactly that, so give it headroom.
const maxmemOf = (n: number, r: number) => 256 * n * r;

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password.normalize("NFKC"), salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))));

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, { N, r: R, p: P, maxmem: maxmemOf(N, R) });
  return ["scrypt", N, R, P, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/** Whether `password` matches `encoded`; a malformed hash never matches. Compared in constant time. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = encoded.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  if (![params.N, params.r, params.p].every((x) => Number.isInteger(x) && x > 0)) return false;
  const expected = Buffer.from(hash, "base64url");
  const actual = await scrypt(password, Buffer.from(salt, "base64url"), expected.length, { ...params, maxmem: maxmemOf(params.N, params.r) });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

// A hash of a password nobody has: checked against when the email is unknown, so that an unknown
// email costs the same scrypt time as a wrong password and login timing does not reveal accounts.
let decoy: Promise<string> | undefined;
export const decoyHash = (): Promise<string> => (decoy ??= hashPassword(randomBytes(18).toString("base64url")));
