// Object tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging, with S3's limits (10 tags, keys of
// 1 to 128 characters, values up to 256, no key twice). The same limits hold for x-amz-tagging on a PUT.
import type { ObjectStore } from '../../store/types.js';
import type { AwsResponse } from '../aws.js';
import { noSuchKey } from './errors.js';
import { checkedTags } from './headers.js';
import { found, readSmall, xml, type Ctx } from './objects.js';
import { malformedXml, parseXml } from './xml.js';

interface TaggingDeps {
  objects: ObjectStore;
}

export async function putObjectTagging(d: TaggingDeps, c: Ctx): Promise<AwsResponse> {
  const doc = parseXml(await readSmall(c.req))['Tagging'];
  if (typeof doc !== 'object' || doc === null) throw malformedXml();
  const set = (doc as { TagSet?: unknown }).TagSet;
  const list = typeof set === 'object' && set !== null ? ((set as { Tag?: unknown[] }).Tag ?? []) : [];
  const tags = checkedTags(
    list.map((t) => {
      const { Key, Value } = (t ?? {}) as { Key?: unknown; Value?: unknown };
      if (typeof Key !== 'string' || (Value !== undefined && typeof Value !== 'string')) throw malformedXml();
      return [Key, Value ?? ''] as [string, string];
    }),
  );
  await found(d, c);
  if (!(await d.objects.setObjectTags(c.project, c.bucket, c.key, tags))) throw noSuchKey(c.key);
  return { status: 200, headers: {}, body: '' };
}

export async function getObjectTagging(d: TaggingDeps, c: Ctx): Promise<AwsResponse> {
  const o = await found(d, c);
  const tags = Object.entries(o.tags).map(([Key, Value]) => ({ Key, Value }));
  return xml(200, 'Tagging', { TagSet: tags.length > 0 ? { Tag: tags } : '' });
}

export async function deleteObjectTagging(d: TaggingDeps, c: Ctx): Promise<AwsResponse> {
  await found(d, c);
  if (!(await d.objects.setObjectTags(c.project, c.bucket, c.key, {}))) throw noSuchKey(c.key);
  return { status: 204, headers: {}, body: '' };
}
