// The SQS digests against known vectors. "sdk" vectors were computed with a line-for-line Java transliteration
// of the AWS SDK for Java v2's MessageMD5ChecksumInterceptor.calculateMessageAttributesMd5 (the JavaScript SDKs,
// v2 and v3's @aws-sdk/middleware-sdk-sqs, check only body digests); "published" vectors are the examples
// published with the aws-md5-of-message-attributes npm package, which that Java code reproduces too; the body
// vector is the md5OfBody of the sample SQS record in the AWS Lambda developer guide.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5OfBody, md5OfMessageAttributes, type SqsMessageAttributeValue } from './sqs-md5.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('md5OfBody', () => {
  it('is the MD5 of the UTF-8 body', () => {
    expect(md5OfBody('Test message.')).toBe('e4e68fb7bd0e697a0ae8f1bb342846b3');
    expect(md5OfBody('')).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(md5OfBody('h\u00e9llo \u2603 \u{1F600}')).toBe('44314d05b09b74dafda26d5273d91a17');
  });
});

describe('md5OfMessageAttributes', () => {
  const vectors: [string, Record<string, SqsMessageAttributeValue>, string][] = [
    [
      'sdk: one String attribute',
      { Author: { DataType: 'String', StringValue: 'Alice' } },
      '76bfaa0094bdbe032cb3b7018adaa502',
    ],
    [
      'sdk: one Number and one Binary attribute',
      {
        count: { DataType: 'Number', StringValue: '42' },
        blob: { DataType: 'Binary', BinaryValue: 'AAEC//4=' },
      },
      'e18f42df97d5bfd97d4cef4b0769106a',
    ],
    [
      'sdk: custom type labels, non-ASCII value, unsorted input',
      {
        zeta: { DataType: 'String.custom', StringValue: 'h\u00e9llo \u2603 \u{1F600}' },
        Alpha: { DataType: 'Number.float', StringValue: '3.14' },
        img: { DataType: 'Binary.png', BinaryValue: 'iVBORw0KGgo=' },
      },
      '45b05a65f0d922c148ac120fed92b301',
    ],
    [
      'sdk: empty string and empty binary values',
      { e: { DataType: 'String', StringValue: '' }, f: { DataType: 'Binary', BinaryValue: '' } },
      '33d610823a7830312def48bba18b7e6a',
    ],
    [
      'published: simple string',
      { attribName1: { DataType: 'String', StringValue: 'attribValue 1' } },
      '19e27d4e946b072f3f58da80d94fd778',
    ],
    [
      'published: custom number type',
      {
        customNumberTypeAttrib: {
          DataType: 'Number.float',
          StringValue: '4563442423554324324264524243.32543234',
        },
      },
      '9fe1b90bbd9965bdf77bac517c7d2495',
    ],
    [
      'published: binary',
      { binaryAttribute: { DataType: 'Binary', BinaryValue: b64('Hello binary world!') } },
      '31a92b15d92f8db860eda32aceb656c3',
    ],
    [
      'published: all three together',
      {
        attribName1: { DataType: 'String', StringValue: 'attribValue 1' },
        customNumberTypeAttrib: {
          DataType: 'Number.float',
          StringValue: '4563442423554324324264524243.32543234',
        },
        binaryAttribute: { DataType: 'Binary', BinaryValue: b64('Hello binary world!') },
      },
      'c932db14a896c663f83c260297d594ff',
    ],
  ];
  it.each(vectors)('%s', (_name, attrs, expected) => {
    expect(md5OfMessageAttributes(attrs)).toBe(expected);
  });

  it('hashes exactly the documented byte layout', () => {
    const expected = createHash('md5')
      .update(Buffer.from([0, 0, 0, 1]))
      .update('a')
      .update(Buffer.from([0, 0, 0, 6]))
      .update('String')
      .update(Buffer.from([1, 0, 0, 0, 2]))
      .update('\u00e9', 'utf8') // two UTF-8 bytes: the length counts bytes, not characters
      .update(Buffer.from([0, 0, 0, 1]))
      .update('b')
      .update(Buffer.from([0, 0, 0, 6]))
      .update('Binary')
      .update(Buffer.from([2, 0, 0, 0, 3, 0xde, 0xad, 0xbe]))
      .digest('hex');
    const attrs = {
      b: { DataType: 'Binary', BinaryValue: Buffer.from([0xde, 0xad, 0xbe]).toString('base64') },
      a: { DataType: 'String', StringValue: '\u00e9' },
    };
    expect(md5OfMessageAttributes(attrs)).toBe(expected);
  });

  it('does not depend on the order the attributes are given in', () => {
    const one = { B: { DataType: 'String', StringValue: 'x' }, a: { DataType: 'Number', StringValue: '1' } };
    const two = { a: one.a, B: one.B };
    expect(md5OfMessageAttributes(one)).toBe(md5OfMessageAttributes(two));
  });

  it('sorts names by byte order, upper case before lower case', () => {
    const attrs = {
      b: { DataType: 'String', StringValue: '1' },
      B: { DataType: 'String', StringValue: '2' },
    };
    const layout = (name: string, value: string) =>
      Buffer.concat([
        Buffer.from([0, 0, 0, 1]),
        Buffer.from(name),
        Buffer.from([0, 0, 0, 6]),
        Buffer.from('String'),
        Buffer.from([1, 0, 0, 0, 1]),
        Buffer.from(value),
      ]);
    const expected = createHash('md5')
      .update(Buffer.concat([layout('B', '2'), layout('b', '1')]))
      .digest('hex');
    expect(md5OfMessageAttributes(attrs)).toBe(expected);
  });

  it('is null without attributes', () => {
    expect(md5OfMessageAttributes({})).toBeNull();
  });

  it('refuses attributes SQS would refuse', () => {
    expect(() => md5OfMessageAttributes({ a: { DataType: 'String' } })).toThrow(/needs a StringValue/);
    expect(() => md5OfMessageAttributes({ a: { DataType: 'Number.int', BinaryValue: 'AA==' } })).toThrow(
      /needs a StringValue/,
    );
    expect(() => md5OfMessageAttributes({ a: { DataType: 'Binary', StringValue: 'x' } })).toThrow(
      /needs a BinaryValue/,
    );
    expect(() => md5OfMessageAttributes({ a: { DataType: 'Binary', BinaryValue: 'not base64!' } })).toThrow(
      /not valid base64/,
    );
    expect(() => md5OfMessageAttributes({ a: { DataType: 'Boolean', StringValue: 'true' } })).toThrow(
      /not String, Number or Binary/,
    );
    expect(() => md5OfMessageAttributes({ a: { DataType: 'Stringy', StringValue: 'x' } })).toThrow(
      /not String, Number or Binary/,
    );
  });
});
