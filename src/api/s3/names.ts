// Bucket names and keys as S3 accepts them.
import { ApiError } from '../errors.js';

/** S3's general purpose bucket naming rules. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be between 3 and 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) {
    return 'may hold lower-case letters, digits, dots and hyphens only, beginning and ending with a letter or digit';
  }
  if (name.includes('..')) return 'must not hold two dots in a row';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return 'must not look like an IP address';
  if (
    /^(xn--|sthree-|amzn-s3-demo-)/.test(name) ||
    /(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)
  ) {
    return 'must not use a prefix or suffix that S3 reserves';
  }
  return undefined;
}

export function checkBucketName(name: string): void {
  const problem = bucketNameProblem(name);
  if (problem) {
    throw new ApiError(400, 'InvalidBucketName', 'The specified bucket is not valid.', problem, {
      BucketName: name,
    });
  }
}

export const MAX_KEY_BYTES = 1024;

export function checkKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new ApiError(400, 'KeyTooLongError', 'Your key is too long', undefined, {
      Size: String(Buffer.byteLength(key, 'utf8')),
      MaxSizeAllowed: String(MAX_KEY_BYTES),
    });
  }
}
