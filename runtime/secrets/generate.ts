/** Generated secret values: cryptographically random, in the declared alphabet and length. */
import { randomBytes } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function generateValue(format: 'alphanumeric' | 'base64' | 'hex', length: number): string {
  if (!Number.isInteger(length) || length < 1) throw new Error(`cannot generate a value of length ${length}`);
  if (format === 'hex') return randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);
  if (format === 'base64') return randomBytes(Math.ceil((length * 3) / 4) + 1).toString('base64').slice(0, length);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALNUM[b % 62]; // 248 = 4 × 62: no modulo bias
    }
  }
  return out;
}
