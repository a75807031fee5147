// S3 speaks XML both ways. fast-xml-parser builds the responses (escaping what it must) and parses the few
// bodies S3 takes (DeleteObjects, CreateBucket's configuration, CompleteMultipartUpload, tags, CORS); nothing here parses XML by hand.
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { ApiError } from '../errors.js';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: false });

/** Elements that may repeat: always arrays, even when one is sent. */
const REPEATED = new Set([
  'Object',
  'Part',
  'Tag',
  'CORSRule',
  'AllowedMethod',
  'AllowedOrigin',
  'AllowedHeader',
  'ExposeHeader',
]);

// Values stay strings (a key "007" is not the number 7) and keep their spaces (a key may start with one).
const parser = new XMLParser({
  parseTagValue: false,
  trimValues: false,
  ignoreAttributes: true,
  removeNSPrefix: true,
  isArray: (name) => REPEATED.has(name),
});

/** An XML document with one root element; `body` is its content, arrays become repeated elements. */
export function xmlDocument(root: string, body: Record<string, unknown>, ns = true): string {
  const content = ns ? { '@_xmlns': S3_NS, ...body } : body;
  return `<?xml version="1.0" encoding="UTF-8"?>\n${String(builder.build({ [root]: content }))}`;
}

/** The request body as parsed XML, or S3's MalformedXML. */
export function parseXml(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8');
  if (text.trim() === '' || XMLValidator.validate(text) !== true) throw malformedXml();
  const parsed = parser.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null) throw malformedXml();
  return parsed as Record<string, unknown>;
}

export function malformedXml(): ApiError {
  return new ApiError(
    400,
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema',
  );
}
