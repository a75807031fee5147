// ListObjects over any backend that can scan an index of UTF-8 key bytes: the roll-up into common prefixes,
// StartAfter and page limits are S3's rules, written once. Each common prefix costs one index seek (the scan
// jumps past every key under it) instead of reading the keys it hides.
import type { ObjectListQuery, ObjectPage, StoredObject, StoredUpload, UploadListQuery } from './types.js';

/** Objects of one bucket with keys in [from, to) (from exclusive unless `inclusive`), in key byte order. */
export type KeyRangeScan = (
  from: Buffer,
  inclusive: boolean,
  to: Buffer | null,
  limit: number,
) => Promise<StoredObject[]>;

const MAX_BATCH = 1000;

export async function listObjectsBy(scan: KeyRangeScan, q: ObjectListQuery): Promise<ObjectPage> {
  const prefix = q.prefix ?? '';
  const prefixBytes = Buffer.from(prefix, 'utf8');
  const to = keyUpperBound(prefixBytes);
  const delimiter = q.delimiter === '' ? undefined : q.delimiter;
  const page: ObjectPage = { objects: [], commonPrefixes: [], truncated: false };
  let pos = startOf(prefix, prefixBytes, delimiter, q.after);
  let count = 0;
  while (pos) {
    const want = Math.min(q.limit - count + 1, MAX_BATCH);
    const rows = await scan(pos.from, pos.inclusive, to, want);
    let jumped = false;
    for (const o of rows) {
      if (count >= q.limit) {
        page.truncated = true;
        return page;
      }
      const cut = delimiter ? o.key.indexOf(delimiter, prefix.length) : -1;
      count++;
      if (cut === -1) {
        page.objects.push(o);
        page.last = o.key;
        pos = { from: Buffer.from(o.key, 'utf8'), inclusive: false };
        continue;
      }
      const common = o.key.slice(0, cut + delimiter!.length);
      page.commonPrefixes.push(common);
      page.last = common;
      pos = afterPrefix(common);
      jumped = true;
      break;
    }
    if (!jumped && rows.length < want) return page;
  }
  return page;
}

/** Where a listing starts: at the prefix, or past `after` (and past everything under it when it is a common
 *  prefix, so a page that ended on one does not list it again). */
function startOf(
  prefix: string,
  prefixBytes: Buffer,
  delimiter: string | undefined,
  after: string | undefined,
): { from: Buffer; inclusive: boolean } | null {
  const start = { from: prefixBytes, inclusive: true };
  if (after === undefined || after === '') return start;
  const afterBytes = Buffer.from(after, 'utf8');
  if (Buffer.compare(afterBytes, prefixBytes) < 0) return start;
  if (delimiter && after.startsWith(prefix) && after.endsWith(delimiter)) {
    const cut = after.indexOf(delimiter, prefix.length);
    if (cut === after.length - delimiter.length) return afterPrefix(after);
  }
  return { from: afterBytes, inclusive: false };
}

function afterPrefix(common: string): { from: Buffer; inclusive: boolean } | null {
  const next = keyUpperBound(Buffer.from(common, 'utf8'));
  return next && { from: next, inclusive: true };
}

/** The smallest byte string greater than every string that starts with `prefix`; null when there is none
 *  (an empty prefix, or one of 0xff bytes only). */
export function keyUpperBound(prefix: Buffer): Buffer | null {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return null;
  const out = Buffer.from(prefix.subarray(0, end));
  out[end - 1] = prefix[end - 1]! + 1;
  return out;
}

/** Uploads of one bucket after (key, upload id), in key byte order then upload id order. */
export type UploadScan = (afterKey: Buffer, afterId: string, limit: number) => Promise<StoredUpload[]>;

/** ListMultipartUploads' page: uploads after the markers whose keys start with the prefix. */
export async function listUploadsBy(scan: UploadScan, q: UploadListQuery): Promise<StoredUpload[]> {
  const prefix = q.prefix ?? '';
  let key = Buffer.from(q.afterKey ?? '', 'utf8');
  // A KeyMarker alone lists after every upload of that key; upload ids are ASCII, all below U+10FFFF.
  let id = q.afterKey === undefined ? '' : (q.afterUploadId ?? '\u{10ffff}');
  if (key.length === 0 && prefix !== '') key = Buffer.from(prefix, 'utf8');
  const out: StoredUpload[] = [];
  for (;;) {
    const rows = await scan(key, id, MAX_BATCH);
    for (const u of rows) {
      if (!u.key.startsWith(prefix)) {
        // Keys are in byte order: past the prefix's keys, nothing later has it.
        if (Buffer.from(u.key, 'utf8').compare(Buffer.from(prefix, 'utf8')) > 0) return out;
        continue;
      }
      out.push(u);
      if (out.length >= q.limit) return out;
    }
    const last = rows.at(-1);
    if (!last || rows.length < MAX_BATCH) return out;
    key = Buffer.from(last.key, 'utf8');
    id = last.uploadId;
  }
}
