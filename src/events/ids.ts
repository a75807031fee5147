// Ids derived from names: the same name always gives the same UUID-shaped id, so something produced twice
// (a destination record re-sent after a crash, a schedule tick two nodes saw) is enqueued once.
import { createHash } from 'node:crypto';

export function derivedId(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 3) | 8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
