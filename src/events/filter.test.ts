// Lambda event filtering: a table of pattern / record / expected verdicts for every operator, then the
// patterns Lambda refuses, then the SQS body view.
import { describe, expect, it } from 'vitest';
import {
  compileFilters,
  FilterPatternError,
  MAX_FILTERS,
  MAX_PATTERN_LENGTH,
  sqsFilterView,
} from './filter.js';

type Case = [name: string, pattern: unknown, record: unknown, expected: boolean];

const ec2 = {
  source: 'aws.ec2',
  'detail-type': 'EC2 Instance State-change Notification',
  resources: [
    'arn:aws:ec2:us-east-1:123456789012:instance/i-1',
    'arn:aws:ec2:us-east-1:123456789012:instance/i-2',
  ],
  detail: { state: 'running', 'c-count': 5, 'x-limit': 301.8, 'source-ip': '10.0.0.33', tags: null },
};

const cases: Case[] = [
  // exact values
  ['string equals', { source: ['aws.ec2'] }, ec2, true],
  ['string differs', { source: ['aws.s3'] }, ec2, false],
  ['string match is case-sensitive', { source: ['AWS.EC2'] }, ec2, false],
  ['leaf array is OR', { source: ['aws.s3', 'aws.ec2'] }, ec2, true],
  ['number equals', { a: [5] }, { a: 5 }, true],
  ['numbers compare by value (5.0 is 5)', '{"a": [5.0]}', { a: 5 }, true],
  ['numbers compare by value (3.0e2 is 300)', '{"a": [3.0e2]}', { a: 300 }, true],
  ['number does not match its string', { a: [5] }, { a: '5' }, false],
  ['string does not match its number', { a: ['5'] }, { a: 5 }, false],
  ['true matches true', { a: [true] }, { a: true }, true],
  ['false matches false', { a: [false] }, { a: false }, true],
  ['true does not match false', { a: [true] }, { a: false }, false],
  ['boolean does not match its string', { a: [true] }, { a: 'true' }, false],
  ['null matches null', { a: [null] }, { a: null }, true],
  ['null does not match a missing field', { a: [null] }, {}, false],
  ['null does not match "null"', { a: [null] }, { a: 'null' }, false],
  ['empty string matches empty string', { a: [''] }, { a: '' }, true],
  ['empty string does not match a missing field', { a: [''] }, {}, false],
  ['a missing field fails an exact value', { a: ['x'] }, { b: 'x' }, false],
  ['an object value fails an exact value', { a: ['x'] }, { a: { b: 'x' } }, false],

  // arrays in the record
  [
    'array field matches when any element does',
    { resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-2'] },
    ec2,
    true,
  ],
  ['array field fails when no element does', { resources: ['arn:other'] }, ec2, false],
  ['nested arrays are flattened', { a: ['x'] }, { a: [['y'], ['x']] }, true],
  ['empty array fails an exact value', { a: ['x'] }, { a: [] }, false],
  [
    'array of objects: nested pattern matches one element',
    { a: { b: ['x'] } },
    { a: [{ b: 'y' }, { b: 'x' }] },
    true,
  ],
  [
    'array of objects: all fields must match the same element',
    { a: { b: ['1'], c: ['2'] } },
    {
      a: [
        { b: '1', c: '3' },
        { b: '4', c: '2' },
      ],
    },
    false,
  ],
  [
    'array of objects: one element matching every field',
    { a: { b: ['1'], c: ['2'] } },
    {
      a: [
        { b: '4', c: '2' },
        { b: '1', c: '2' },
      ],
    },
    true,
  ],
  ['objects inside a leaf array are not leaf values', { a: ['x'] }, { a: [{ x: 1 }, 'x'] }, true],

  // nesting and AND
  ['all fields must match (AND)', { source: ['aws.ec2'], detail: { state: ['running'] } }, ec2, true],
  [
    'one failing field fails the pattern',
    { source: ['aws.ec2'], detail: { state: ['stopped'] } },
    ec2,
    false,
  ],
  ['deep nesting', { a: { b: { c: { d: [1] } } } }, { a: { b: { c: { d: 1, e: 2 } } } }, true],
  ['a missing parent fails a nested value', { a: { b: ['x'] } }, {}, false],
  ['a missing parent counts as no fields (exists:false)', { a: { b: [{ exists: false }] } }, {}, true],
  ['a null parent counts as no fields', { a: { b: [{ exists: false }] } }, { a: null }, true],
  ['an empty array parent counts as no fields', { a: { b: [{ exists: false }] } }, { a: [] }, true],
  ['a string where an object is expected fails', { a: { b: [{ exists: false }] } }, { a: 'text' }, false],
  ['a number where an object is expected fails', { a: { b: ['x'] } }, { a: 5 }, false],
  ['a record that is not an object fails', { a: ['x'] }, 'a', false],
  ['an undefined record has no fields', { a: [{ exists: false }] }, undefined, true],
  [
    'fields of the prototype are not fields',
    { constructor: [{ exists: false }], toString: [{ exists: false }] },
    {},
    true,
  ],
  ['own field named like a prototype member', { constructor: ['x'] }, { constructor: 'x' }, true],

  // prefix / suffix
  ['prefix matches', { time: [{ prefix: '2017-10-02' }] }, { time: '2017-10-02T18:43:48Z' }, true],
  ['prefix fails', { time: [{ prefix: '2017-10-03' }] }, { time: '2017-10-02T18:43:48Z' }, false],
  ['prefix is case-sensitive', { a: [{ prefix: 'AB' }] }, { a: 'abc' }, false],
  ['prefix only applies to strings', { a: [{ prefix: '1' }] }, { a: 12 }, false],
  ['empty prefix matches any string', { a: [{ prefix: '' }] }, { a: 'x' }, true],
  [
    'prefix with equals-ignore-case',
    { a: [{ prefix: { 'equals-ignore-case': 'EventB' } }] },
    { a: 'eventbridge' },
    true,
  ],
  [
    'prefix with equals-ignore-case fails',
    { a: [{ prefix: { 'equals-ignore-case': 'EventB' } }] },
    { a: 'events' },
    false,
  ],
  ['suffix matches', { file: [{ suffix: '.png' }] }, { file: 'cat.png' }, true],
  ['suffix fails', { file: [{ suffix: '.png' }] }, { file: 'cat.PNG' }, false],
  [
    'suffix with equals-ignore-case',
    { file: [{ suffix: { 'equals-ignore-case': '.png' } }] },
    { file: 'cat.PNG' },
    true,
  ],
  ['suffix on a missing field fails', { file: [{ suffix: '.png' }] }, {}, false],
  ['prefix on an array element', { a: [{ prefix: 'us-' }] }, { a: ['eu-west-1', 'us-east-1'] }, true],

  // equals-ignore-case
  ['equals-ignore-case matches', { a: [{ 'equals-ignore-case': 'EC2' }] }, { a: 'ec2' }, true],
  [
    'equals-ignore-case needs the whole string',
    { a: [{ 'equals-ignore-case': 'EC2' }] },
    { a: 'ec2x' },
    false,
  ],
  ['equals-ignore-case only applies to strings', { a: [{ 'equals-ignore-case': '1' }] }, { a: 1 }, false],

  // wildcard
  ['wildcard matches', { a: [{ wildcard: 'Simple*Service' }] }, { a: 'SimpleQueueService' }, true],
  [
    'wildcard star matches nothing too',
    { a: [{ wildcard: 'Simple*Service' }] },
    { a: 'SimpleService' },
    true,
  ],
  ['wildcard fails', { a: [{ wildcard: 'Simple*Service' }] }, { a: 'SimpleQueue' }, false],
  ['wildcard anchors both ends', { a: [{ wildcard: 'b*' }] }, { a: 'abc' }, false],
  ['wildcard of a lone star matches any string', { a: [{ wildcard: '*' }] }, { a: '' }, true],
  ['wildcard with several stars', { a: [{ wildcard: '*/lib/*.js' }] }, { a: 'src/lib/x/y.js' }, true],
  ['wildcard with several stars fails', { a: [{ wildcard: '*/lib/*.js' }] }, { a: 'src/bin/x.js' }, false],
  ['wildcard parts may not overlap', { a: [{ wildcard: 'ab*ba' }] }, { a: 'aba' }, false],
  ['wildcard without a star is equality', { a: [{ wildcard: 'abc' }] }, { a: 'abc' }, true],
  ['wildcard escaped star is literal', { a: [{ wildcard: 'a\\*b' }] }, { a: 'a*b' }, true],
  ['wildcard escaped star does not match others', { a: [{ wildcard: 'a\\*b' }] }, { a: 'axb' }, false],
  ['wildcard escaped backslash is literal', { a: [{ wildcard: 'a\\\\*' }] }, { a: 'a\\bc' }, true],
  ['wildcard spans newlines', { a: [{ wildcard: 'a*b' }] }, { a: 'a\n\nb' }, true],
  ['wildcard only applies to strings', { a: [{ wildcard: '*' }] }, { a: 5 }, false],

  // anything-but
  [
    'anything-but string excludes it',
    { a: [{ 'anything-but': 'initializing' }] },
    { a: 'initializing' },
    false,
  ],
  ['anything-but string allows others', { a: [{ 'anything-but': 'initializing' }] }, { a: 'running' }, true],
  ['anything-but number excludes it', { a: [{ 'anything-but': 123 }] }, { a: 123 }, false],
  ['anything-but number compares by value', '{"a": [{"anything-but": 123.0}]}', { a: 123 }, false],
  ['anything-but number allows others', { a: [{ 'anything-but': 123 }] }, { a: 124 }, true],
  [
    'anything-but string list',
    { a: [{ 'anything-but': ['stopped', 'overloaded'] }] },
    { a: 'overloaded' },
    false,
  ],
  [
    'anything-but string list allows others',
    { a: [{ 'anything-but': ['stopped', 'overloaded'] }] },
    { a: 'ok' },
    true,
  ],
  ['anything-but number list', { a: [{ 'anything-but': [100, 200, 300] }] }, { a: 200 }, false],
  [
    'anything-but number list allows others',
    { a: [{ 'anything-but': [100, 200, 300] }] },
    { a: 301.8 },
    true,
  ],
  ['anything-but does not match a missing field', { a: [{ 'anything-but': 'x' }] }, {}, false],
  ['anything-but does not match an object', { a: [{ 'anything-but': 'x' }] }, { a: { b: 1 } }, false],
  ['anything-but allows another type', { a: [{ 'anything-but': 'x' }] }, { a: 5 }, true],
  ['anything-but allows null', { a: [{ 'anything-but': 'x' }] }, { a: null }, true],
  ['anything-but number list allows strings', { a: [{ 'anything-but': [1] }] }, { a: '1' }, true],
  [
    'anything-but on an array: one allowed element is enough',
    { a: [{ 'anything-but': 'x' }] },
    { a: ['x', 'y'] },
    true,
  ],
  [
    'anything-but on an array: every element excluded',
    { a: [{ 'anything-but': ['x', 'y'] }] },
    { a: ['x', 'y'] },
    false,
  ],
  [
    'anything-but prefix excludes',
    { a: [{ 'anything-but': { prefix: 'init' } }] },
    { a: 'initializing' },
    false,
  ],
  ['anything-but prefix allows', { a: [{ 'anything-but': { prefix: 'init' } }] }, { a: 'running' }, true],
  ['anything-but prefix allows non-strings', { a: [{ 'anything-but': { prefix: 'init' } }] }, { a: 7 }, true],
  [
    'anything-but prefix list',
    { a: [{ 'anything-but': { prefix: ['us-', 'eu-'] } }] },
    { a: 'eu-west-1' },
    false,
  ],
  ['anything-but suffix excludes', { a: [{ 'anything-but': { suffix: '.png' } }] }, { a: 'x.png' }, false],
  ['anything-but suffix allows', { a: [{ 'anything-but': { suffix: '.png' } }] }, { a: 'x.jpg' }, true],
  [
    'anything-but equals-ignore-case excludes',
    { a: [{ 'anything-but': { 'equals-ignore-case': 'Initializing' } }] },
    { a: 'INITIALIZING' },
    false,
  ],
  [
    'anything-but equals-ignore-case list allows',
    { a: [{ 'anything-but': { 'equals-ignore-case': ['a', 'b'] } }] },
    { a: 'C' },
    true,
  ],
  [
    'anything-but wildcard excludes',
    { a: [{ 'anything-but': { wildcard: '*/lib/*' } }] },
    { a: 'x/lib/y' },
    false,
  ],
  [
    'anything-but wildcard allows',
    { a: [{ 'anything-but': { wildcard: '*/lib/*' } }] },
    { a: 'x/bin/y' },
    true,
  ],

  // numeric
  ['numeric =', { a: [{ numeric: ['=', 301.8] }] }, { a: 301.8 }, true],
  ['numeric = compares by value', '{"a": [{"numeric": ["=", 3.018e2]}]}', { a: 301.8 }, true],
  ['numeric = fails', { a: [{ numeric: ['=', 5] }] }, { a: 6 }, false],
  ['numeric >', { a: [{ numeric: ['>', 0] }] }, { a: 0.0001 }, true],
  ['numeric > is strict', { a: [{ numeric: ['>', 0] }] }, { a: 0 }, false],
  ['numeric >=', { a: [{ numeric: ['>=', 0] }] }, { a: 0 }, true],
  ['numeric <', { a: [{ numeric: ['<', 10] }] }, { a: -3 }, true],
  ['numeric < is strict', { a: [{ numeric: ['<', 10] }] }, { a: 10 }, false],
  ['numeric <=', { a: [{ numeric: ['<=', 10] }] }, { a: 10 }, true],
  ['numeric range inside', { a: [{ numeric: ['>', 0, '<=', 5] }] }, { a: 3 }, true],
  ['numeric range upper bound inclusive', { a: [{ numeric: ['>', 0, '<=', 5] }] }, { a: 5 }, true],
  ['numeric range lower bound exclusive', { a: [{ numeric: ['>', 0, '<=', 5] }] }, { a: 0 }, false],
  ['numeric range above', { a: [{ numeric: ['>', 0, '<=', 5] }] }, { a: 5.5 }, false],
  ['numeric range >= and <', { a: [{ numeric: ['>=', -1.5, '<', 2] }] }, { a: -1.5 }, true],
  ['numeric only applies to numbers', { a: [{ numeric: ['>', 0] }] }, { a: '3' }, false],
  ['numeric on a missing field fails', { a: [{ numeric: ['>', 0] }] }, {}, false],
  ['numeric on an array element', { a: [{ numeric: ['>', 10] }] }, { a: [1, 2, 30] }, true],
  ['numeric alternatives', { a: [{ numeric: ['<', 0] }, { numeric: ['>', 100] }] }, { a: 101 }, true],
  ['numeric beside exact numbers', { a: [7, { numeric: ['>', 100] }] }, { a: 7 }, true],

  // exists
  ['exists true: present', { detail: { state: [{ exists: true }] } }, ec2, true],
  ['exists true: null counts as present', { detail: { tags: [{ exists: true }] } }, ec2, true],
  ['exists true: missing', { detail: { nope: [{ exists: true }] } }, ec2, false],
  ['exists true: an object is not a leaf', { a: [{ exists: true }] }, { a: { b: 1 } }, false],
  ['exists true: an empty array has no value', { a: [{ exists: true }] }, { a: [] }, false],
  ['exists true: a non-empty array', { a: [{ exists: true }] }, { a: [0] }, true],
  ['exists false: missing', { detail: { nope: [{ exists: false }] } }, ec2, true],
  ['exists false: present', { detail: { state: [{ exists: false }] } }, ec2, false],
  ['exists false: null is present', { detail: { tags: [{ exists: false }] } }, ec2, false],
  ['exists false: an object is not a leaf', { a: [{ exists: false }] }, { a: { c1: 100 } }, true],
  ['exists false or a value: missing', { a: ['x', { exists: false }] }, {}, true],
  ['exists false or a value: the value', { a: ['x', { exists: false }] }, { a: 'x' }, true],
  ['exists false or a value: another value', { a: ['x', { exists: false }] }, { a: 'y' }, false],

  // cidr
  ['cidr IPv4 inside', { detail: { 'source-ip': [{ cidr: '10.0.0.0/24' }] } }, ec2, true],
  ['cidr IPv4 outside', { ip: [{ cidr: '10.0.0.0/24' }] }, { ip: '10.0.1.1' }, false],
  ['cidr host bits in the block are ignored', { ip: [{ cidr: '10.0.0.7/8' }] }, { ip: '10.200.0.1' }, true],
  ['cidr single address', { ip: [{ cidr: '192.168.1.1' }] }, { ip: '192.168.1.1' }, true],
  ['cidr single address differs', { ip: [{ cidr: '192.168.1.1' }] }, { ip: '192.168.1.2' }, false],
  ['cidr IPv6 inside', { ip: [{ cidr: '2001:db8::/32' }] }, { ip: '2001:db8:1::5' }, true],
  ['cidr IPv6 outside', { ip: [{ cidr: '2001:db8::/32' }] }, { ip: '2001:db9::5' }, false],
  ['cidr IPv4 block and an IPv6 address', { ip: [{ cidr: '10.0.0.0/8' }] }, { ip: '2001:db8::1' }, false],
  ['cidr not an address', { ip: [{ cidr: '10.0.0.0/8' }] }, { ip: 'ten' }, false],
  ['cidr only applies to strings', { ip: [{ cidr: '10.0.0.0/8' }] }, { ip: 10 }, false],

  // $or
  [
    '$or: source and (metricName or namespace), first',
    { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
    { source: 'aws.cloudwatch', metricName: 'CPUUtilization' },
    true,
  ],
  [
    '$or: second alternative',
    { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
    { source: 'aws.cloudwatch', namespace: 'AWS/EC2' },
    true,
  ],
  [
    '$or: neither alternative',
    { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
    { source: 'aws.cloudwatch', namespace: 'AWS/S3' },
    false,
  ],
  [
    '$or: the other fields still apply',
    { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
    { source: 'aws.ec2', metricName: 'CPUUtilization' },
    false,
  ],
  ['$or: an alternative with an AND inside', { $or: [{ a: [1] }, { b: [2], c: [3] }] }, { b: 2, c: 3 }, true],
  [
    '$or: an AND alternative needs all of it',
    { $or: [{ a: [1] }, { b: [2], c: [3] }] },
    { b: 2, c: 4 },
    false,
  ],
  [
    '$or nested in a field',
    { detail: { $or: [{ state: ['stopped'] }, { 'c-count': [{ numeric: ['>', 4] }] }] } },
    ec2,
    true,
  ],
  [
    '$or nested inside $or',
    { $or: [{ a: [1] }, { b: [2], $or: [{ c: [3] }, { d: [4] }] }] },
    { b: 2, d: 4 },
    true,
  ],
  [
    '$or nested inside $or fails',
    { $or: [{ a: [1] }, { b: [2], $or: [{ c: [3] }, { d: [4] }] }] },
    { b: 2, d: 5 },
    false,
  ],
  ['$or alternative with exists:false', { $or: [{ a: ['x'] }, { a: [{ exists: false }] }] }, {}, true],
  [
    '$or within array elements stays with one element',
    { items: { kind: ['book'], $or: [{ price: [{ numeric: ['<', 10] }] }, { sale: [true] }] } },
    {
      items: [
        { kind: 'book', price: 50 },
        { kind: 'pen', sale: true },
      ],
    },
    false,
  ],
  [
    '$or within array elements: an element matching',
    { items: { kind: ['book'], $or: [{ price: [{ numeric: ['<', 10] }] }, { sale: [true] }] } },
    {
      items: [
        { kind: 'pen', sale: true },
        { kind: 'book', price: 50, sale: true },
      ],
    },
    true,
  ],

  // the documented complex example
  [
    'complex example',
    {
      source: [{ prefix: 'aws.' }],
      detail: {
        state: [{ 'anything-but': 'initializing' }],
        'c-count': [{ numeric: ['>', 0, '<=', 5] }],
        'x-limit': [{ 'anything-but': [100, 200, 300] }],
        'source-ip': [{ cidr: '10.0.0.0/8' }],
      },
    },
    ec2,
    true,
  ],
];

describe('compileFilters: matching', () => {
  it.each(cases)('%s', (_name, pattern, record, expected) => {
    const filter = compileFilters([pattern]);
    expect(filter.matches(record)).toBe(expected);
    // The same verdict from the JSON text of the pattern.
    const text = typeof pattern === 'string' ? pattern : JSON.stringify(pattern);
    expect(compileFilters([text]).matches(record)).toBe(expected);
  });

  it('matches everything with no filters', () => {
    const filter = compileFilters([]);
    expect(filter.size).toBe(0);
    expect(filter.matches({})).toBe(true);
    expect(filter.matches('anything')).toBe(true);
  });

  it('matches when any filter matches (OR across filters)', () => {
    const filter = compileFilters([
      '{"a": ["x"]}',
      { b: [{ numeric: ['>', 1] }] },
      '{"c": [{"exists": true}]}',
    ]);
    expect(filter.size).toBe(3);
    expect(filter.matches({ a: 'x' })).toBe(true);
    expect(filter.matches({ b: 2 })).toBe(true);
    expect(filter.matches({ c: null })).toBe(true);
    expect(filter.matches({ a: 'y', b: 1 })).toBe(false);
    expect(filter.matches({})).toBe(false);
  });

  it('is compiled once and reused', () => {
    const filter = compileFilters([{ n: [{ numeric: ['>=', 500] }] }]);
    let matched = 0;
    for (let i = 0; i < 1000; i++) if (filter.matches({ n: i })) matched++;
    expect(matched).toBe(500);
  });

  it('matches wildcards in linear time', () => {
    const filter = compileFilters([{ a: [{ wildcard: '*a*a*a*a*a*a*a*b' }] }]);
    const started = Date.now();
    expect(filter.matches({ a: 'a'.repeat(100_000) })).toBe(false);
    expect(filter.matches({ a: 'a'.repeat(100_000) + 'b' })).toBe(true);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('accepts up to maxFilters filters', () => {
    const five = Array.from({ length: MAX_FILTERS }, (_, i) => ({ a: [i] }));
    expect(compileFilters(five).matches({ a: 4 })).toBe(true);
    const ten = Array.from({ length: 10 }, (_, i) => ({ a: [i] }));
    expect(compileFilters(ten, { maxFilters: 10 }).matches({ a: 9 })).toBe(true);
  });

  it('accepts a pattern of exactly the maximum length', () => {
    const pattern = `{"a":["${'x'.repeat(MAX_PATTERN_LENGTH - 10)}"]}`;
    expect(pattern.length).toBe(MAX_PATTERN_LENGTH);
    expect(compileFilters([pattern]).matches({ a: 'x'.repeat(MAX_PATTERN_LENGTH - 10) })).toBe(true);
  });
});

type ErrorCase = [name: string, pattern: unknown, message: RegExp, path?: string];

const circular: Record<string, unknown> = { a: ['x'] };
circular.self = circular;

const errorCases: ErrorCase[] = [
  // the pattern as a whole
  ['not JSON', '{"a": [1', /not valid JSON/],
  ['empty string', '', /not valid JSON/],
  ['JSON array', '[{"a": [1]}]', /must be a JSON object.*got an array/],
  ['JSON string', '"a"', /must be a JSON object.*got the string/],
  ['JSON null', 'null', /must be a JSON object.*got null/],
  ['a number', 42, /must be a JSON object.*got number 42/],
  ['null', null, /must be a JSON object.*got null/],
  ['a Filter object instead of its Pattern', { Pattern: '{"a": ["x"]}' }, /Filter object; pass its Pattern/],
  ['empty pattern', '{}', /empty object matches nothing/],
  [
    'too long',
    `{"a":["${'x'.repeat(MAX_PATTERN_LENGTH - 9)}"]}`,
    /4097 characters long; Lambda allows at most 4096/,
  ],
  [
    'too long as an object',
    { a: ['x'.repeat(MAX_PATTERN_LENGTH)] },
    /characters long as JSON; Lambda allows at most 4096/,
  ],
  ['circular object', circular, /cannot be written as JSON/],

  // fields
  ['empty nested object', { a: {} }, /empty object matches nothing/, 'a'],
  ['leaf is a string', { a: 'x' }, /must hold an array of values.*the string "x".*write "a": \["x"\]/, 'a'],
  ['leaf is a number', { a: { b: 5 } }, /must hold an array.*number 5/, 'a.b'],
  ['leaf is null', { a: null }, /must hold an array.*got null/, 'a'],
  ['leaf is a boolean', { a: true }, /must hold an array.*boolean true/, 'a'],
  [
    'operator used as a field',
    { prefix: 'x' },
    /"prefix" is an operator, which goes inside the field's array/,
    'prefix',
  ],
  ['empty leaf array', { a: [] }, /empty array matches nothing/, 'a'],
  ['nested array in a leaf', { a: [['x']] }, /arrays cannot nest/, 'a[0]'],
  ['non-finite number', { a: [Number.NaN] }, /numbers must be finite/, 'a[0]'],
  [
    'not a JSON value',
    { a: [undefined] },
    /must be a string, number, boolean, null or operator object, got nothing/,
    'a[0]',
  ],

  // operators
  [
    'unknown operator',
    { a: [{ 'begins-with': 'x' }] },
    /unknown operator "begins-with"; supported: prefix, suffix/,
    'a[0]',
  ],
  [
    '$or inside a leaf',
    { a: [{ $or: [{ b: [1] }, { c: [2] }] }] },
    /"\$or" goes in an object pattern/,
    'a[0]',
  ],
  [
    'two operators in one object',
    { a: [{ prefix: 'x', suffix: 'y' }] },
    /exactly one operator, got "prefix", "suffix"/,
    'a[0]',
  ],
  ['empty operator object', { a: [{}] }, /empty object is not an operator/, 'a[0]'],
  ['prefix of a number', { a: [{ prefix: 1 }] }, /"prefix" takes a string.*got number 1/, 'a[0].prefix'],
  [
    'prefix of an unknown object',
    { a: [{ prefix: { 'equals-case': 'x' } }] },
    /"prefix" takes a string or \{"equals-ignore-case"/,
    'a[0].prefix',
  ],
  [
    'prefix equals-ignore-case of a number',
    { a: [{ prefix: { 'equals-ignore-case': 3 } }] },
    /"equals-ignore-case" takes a string, got number 3/,
    'a[0].prefix.equals-ignore-case',
  ],
  ['suffix of an array', { a: [{ suffix: ['x'] }] }, /"suffix" takes a string/, 'a[0].suffix'],
  [
    'equals-ignore-case of a number',
    { a: [{ 'equals-ignore-case': 1 }] },
    /"equals-ignore-case" takes a string/,
    'a[0].equals-ignore-case',
  ],
  ['wildcard of a number', { a: [{ wildcard: 1 }] }, /"wildcard" takes a string/, 'a[0].wildcard'],
  ['wildcard with consecutive stars', { a: [{ wildcard: 'a**b' }] }, /consecutive "\*"/, 'a[0].wildcard'],
  ['wildcard with a bad escape', { a: [{ wildcard: 'a\\b' }] }, /backslash may only escape/, 'a[0].wildcard'],
  [
    'wildcard with a trailing backslash',
    { a: [{ wildcard: 'a\\' }] },
    /backslash may only escape/,
    'a[0].wildcard',
  ],
  [
    'exists of a string',
    { a: [{ exists: 'true' }] },
    /"exists" takes true or false, got the string "true"/,
    'a[0].exists',
  ],
  ['exists of null', { a: [{ exists: null }] }, /"exists" takes true or false, got null/, 'a[0].exists'],

  // numeric
  [
    'numeric of a number',
    { a: [{ numeric: 5 }] },
    /"numeric" takes one comparison or a range/,
    'a[0].numeric',
  ],
  [
    'numeric of one term',
    { a: [{ numeric: ['>'] }] },
    /"numeric" takes one comparison or a range/,
    'a[0].numeric',
  ],
  [
    'numeric of three terms',
    { a: [{ numeric: ['>', 1, '<'] }] },
    /"numeric" takes one comparison or a range/,
    'a[0].numeric',
  ],
  [
    'numeric of six terms',
    { a: [{ numeric: ['>', 1, '<', 5, '<', 6] }] },
    /one comparison or a range/,
    'a[0].numeric',
  ],
  [
    'numeric unknown operator',
    { a: [{ numeric: ['!=', 1] }] },
    /unknown numeric operator the string "!="/,
    'a[0].numeric[0]',
  ],
  [
    'numeric operator not a string',
    { a: [{ numeric: [1, 1] }] },
    /unknown numeric operator number 1/,
    'a[0].numeric[0]',
  ],
  [
    'numeric bound a string',
    { a: [{ numeric: ['>', '5'] }] },
    /bound must be a number, got the string "5"/,
    'a[0].numeric[1]',
  ],
  [
    'numeric bound infinite',
    { a: [{ numeric: ['<', Infinity] }] },
    /numbers must be finite/,
    'a[0].numeric[1]',
  ],
  [
    'numeric range with =',
    { a: [{ numeric: ['=', 1, '<', 5] }] },
    /lower bound \(> or >=\) then an upper bound/,
    'a[0].numeric',
  ],
  [
    'numeric range upper first',
    { a: [{ numeric: ['<', 5, '>', 0] }] },
    /lower bound \(> or >=\) then an upper bound/,
    'a[0].numeric',
  ],
  [
    'numeric range of two lower bounds',
    { a: [{ numeric: ['>', 0, '>=', 5] }] },
    /lower bound .* then an upper bound/,
    'a[0].numeric',
  ],
  [
    'numeric range empty',
    { a: [{ numeric: ['>', 5, '<', 5] }] },
    /range is empty: its lower bound 5 must be below its upper bound 5/,
    'a[0].numeric',
  ],
  ['numeric range reversed', { a: [{ numeric: ['>=', 10, '<=', 1] }] }, /range is empty/, 'a[0].numeric'],

  // anything-but
  [
    'anything-but of a boolean',
    { a: [{ 'anything-but': true }] },
    /"anything-but" takes a string, a number/,
    'a[0].anything-but',
  ],
  [
    'anything-but of null',
    { a: [{ 'anything-but': null }] },
    /"anything-but" takes a string, a number/,
    'a[0].anything-but',
  ],
  [
    'anything-but of an empty list',
    { a: [{ 'anything-but': [] }] },
    /needs at least one value/,
    'a[0].anything-but',
  ],
  [
    'anything-but of a mixed list',
    { a: [{ 'anything-but': ['a', 1] }] },
    /only strings or only numbers/,
    'a[0].anything-but',
  ],
  [
    'anything-but of a list of booleans',
    { a: [{ 'anything-but': [true] }] },
    /only strings or only numbers/,
    'a[0].anything-but',
  ],
  [
    'anything-but of an unknown object',
    { a: [{ 'anything-but': { numeric: ['>', 1] } }] },
    /"anything-but" takes/,
    'a[0].anything-but',
  ],
  [
    'anything-but of two operators',
    { a: [{ 'anything-but': { prefix: 'a', suffix: 'b' } }] },
    /"anything-but" takes/,
    'a[0].anything-but',
  ],
  [
    'anything-but prefix of a number',
    { a: [{ 'anything-but': { prefix: 1 } }] },
    /"prefix" takes a string/,
    'a[0].anything-but.prefix',
  ],
  [
    'anything-but prefix list with a number',
    { a: [{ 'anything-but': { prefix: ['a', 2] } }] },
    /"prefix" takes a string/,
    'a[0].anything-but.prefix[1]',
  ],
  [
    'anything-but empty prefix list',
    { a: [{ 'anything-but': { suffix: [] } }] },
    /needs at least one string/,
    'a[0].anything-but.suffix',
  ],
  [
    'anything-but bad wildcard',
    { a: [{ 'anything-but': { wildcard: 'a**' } }] },
    /consecutive/,
    'a[0].anything-but.wildcard',
  ],

  // cidr
  ['cidr of a number', { a: [{ cidr: 10 }] }, /"cidr" takes an IPv4 or IPv6 block/, 'a[0].cidr'],
  [
    'cidr not an address',
    { a: [{ cidr: '10.0.0/8' }] },
    /"cidr" takes an IPv4 or IPv6 block.*"10.0.0\/8"/,
    'a[0].cidr',
  ],
  ['cidr prefix too long for IPv4', { a: [{ cidr: '10.0.0.0/33' }] }, /"cidr" takes/, 'a[0].cidr'],
  ['cidr prefix too long for IPv6', { a: [{ cidr: '::/129' }] }, /"cidr" takes/, 'a[0].cidr'],
  ['cidr prefix not a number', { a: [{ cidr: '10.0.0.0/x' }] }, /"cidr" takes/, 'a[0].cidr'],
  ['cidr empty prefix', { a: [{ cidr: '10.0.0.0/' }] }, /"cidr" takes/, 'a[0].cidr'],

  // $or
  ['$or of an object', { $or: { a: [1] } }, /"\$or" takes an array of two or more object patterns/, '$or'],
  ['$or of one alternative', { $or: [{ a: [1] }] }, /"\$or" takes an array of two or more/, '$or'],
  [
    '$or with a non-object alternative',
    { $or: [{ a: [1] }, ['b']] },
    /each "\$or" alternative must be an object pattern/,
    '$or[1]',
  ],
  ['$or with an empty alternative', { $or: [{ a: [1] }, {}] }, /empty object matches nothing/, '$or[1]'],
  ['$or with a bad alternative', { $or: [{ a: [1] }, { b: 'x' }] }, /must hold an array/, '$or[1].b'],
  ['nested $or of one', { detail: { $or: [{ a: [1] }] } }, /two or more/, 'detail.$or'],
];

describe('compileFilters: invalid patterns', () => {
  it.each(errorCases)('%s', (_name, pattern, message, path = '') => {
    let error: unknown;
    try {
      compileFilters([{ ok: ['fine'] }, pattern]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FilterPatternError);
    const e = error as FilterPatternError;
    expect(e.filterIndex).toBe(1);
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
    expect(
      e.message.startsWith(`FilterCriteria.Filters[1]${path ? ` at ${JSON.stringify(path)}` : ''}: `),
    ).toBe(true);
  });

  it('refuses more filters than allowed', () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ a: [i] }));
    expect(() => compileFilters(six)).toThrow(FilterPatternError);
    expect(() => compileFilters(six)).toThrow(
      /at most 5 filters are allowed per event source mapping, got 6/,
    );
    try {
      compileFilters(six);
    } catch (err) {
      expect((err as FilterPatternError).filterIndex).toBe(5);
    }
    expect(() => compileFilters(six.slice(0, 3), { maxFilters: 2 })).toThrow(/at most 2 filters/);
  });

  it('names the filter and the place in the message', () => {
    expect(() => compileFilters([{ detail: { state: ['ok', { prefix: 3 }] } }])).toThrow(
      'FilterCriteria.Filters[0] at "detail.state[1].prefix": "prefix" takes a string or {"equals-ignore-case": "..."}, got number 3',
    );
  });
});

describe('sqsFilterView', () => {
  const record = (body: string) => ({
    messageId: 'm1',
    body,
    attributes: { ApproximateReceiveCount: '1', SenderId: 'AIDA' },
    messageAttributes: { kind: { stringValue: 'order', dataType: 'String' } },
    eventSource: 'aws:sqs',
  });

  it('parses a JSON object body', () => {
    const r = record('{\n "RequestCode": "BBBB", "n": 3}');
    const view = sqsFilterView(r) as { body: unknown; messageId: string };
    expect(view.body).toEqual({ RequestCode: 'BBBB', n: 3 });
    expect(view.messageId).toBe('m1');
    expect(r.body).toBe('{\n "RequestCode": "BBBB", "n": 3}'); // the record is not changed
  });

  it('parses a JSON array body', () => {
    expect((sqsFilterView(record(' [1, 2]')) as { body: unknown }).body).toEqual([1, 2]);
  });

  it('leaves plain text, JSON scalars and broken JSON as strings', () => {
    for (const body of ['hello', '42', '"quoted"', 'true', 'null', '{not json', '']) {
      const r = record(body);
      expect(sqsFilterView(r)).toBe(r);
    }
  });

  it('takes any record-like object and leaves one without a string body as it is', () => {
    interface SqsRecordLike {
      body: string;
      messageId: string;
    }
    const typed: SqsRecordLike = { body: '{"a": 1}', messageId: 'm' };
    expect(sqsFilterView(typed)).toEqual({ body: { a: 1 }, messageId: 'm' });
    const loose: Record<string, unknown> = { body: 5 };
    expect(sqsFilterView(loose)).toBe(loose);
  });

  const filterSqs: [name: string, pattern: unknown, body: string, expected: boolean][] = [
    ['JSON body, JSON pattern', { body: { RequestCode: ['BBBB'] } }, '{"RequestCode": "BBBB"}', true],
    [
      'JSON body, JSON pattern, other value',
      { body: { RequestCode: ['BBBB'] } },
      '{"RequestCode": "AAAA"}',
      false,
    ],
    ['JSON body, numeric on a body field', { body: { n: [{ numeric: ['>', 2] }] } }, '{"n": 3}', true],
    [
      'JSON body, nested array of objects',
      { body: { Records: { eventName: ['ObjectCreated:Put'] } } },
      '{"Records": [{"eventName": "ObjectCreated:Put"}]}',
      true,
    ],
    ['plain body, plain pattern', { body: ['hello'] }, 'hello', true],
    ['plain body, prefix pattern', { body: [{ prefix: 'hel' }] }, 'hello', true],
    ['scalar JSON body is a plain string', { body: ['42'] }, '42', true],
    ['plain body, JSON pattern: dropped', { body: { RequestCode: ['BBBB'] } }, 'RequestCode=BBBB', false],
    [
      'plain body, JSON pattern with exists:false: dropped',
      { body: { x: [{ exists: false }] } },
      'text',
      false,
    ],
    ['JSON body, plain pattern: dropped', { body: ['{"a":1}'] }, '{"a":1}', false],
    ['no body pattern: metadata only', { attributes: { SenderId: ['AIDA'] } }, 'anything', true],
    ['message attributes', { messageAttributes: { kind: { stringValue: ['order'] } } }, '{"a": 1}', true],
  ];
  it.each(filterSqs)('filters SQS records: %s', (_name, pattern, body, expected) => {
    expect(compileFilters([pattern]).matches(sqsFilterView(record(body)))).toBe(expected);
  });
});
