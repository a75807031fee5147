// The body of a request whose signature was checked before the body was read (AwsService.handleStream): the
// signature covers x-amz-content-sha256, and this checks the body against it while it streams, failing the
// stream at its end (or at the bad chunk) so that whoever consumes it writes nothing. The modes are S3's:
// a hex SHA-256 of the body; UNSIGNED-PAYLOAD; and aws-chunked bodies, with each chunk signed in a chain
// from the header signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), with trailing headers (checksums) after
// the last chunk (...-TRAILER), or both. Errors are S3's codes and words.
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { ApiError } from './errors.js';
import { hmac, sha256Hex, type SigV4Seed } from './sigv4.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** A chunk header or trailer line longer than this is not aws-chunked. */
const MAX_LINE = 4096;

export interface VerifiedBody {
  /** The payload (decoded, for aws-chunked); errors instead of ending when it does not match its signature. */
  body: Readable;
  /** Trailing headers (lower-case names) of an aws-chunked body, complete once body has ended. */
  trailers: Record<string, string>;
}

export function verifiedBody(raw: Readable, seed: SigV4Seed, decodedLength?: number): VerifiedBody {
  const mode = seed.payloadHash;
  const trailers: Record<string, string> = {};
  if (mode === 'UNSIGNED-PAYLOAD') return { body: raw.pipe(new PassThrough()), trailers };
  if (mode.startsWith('STREAMING-')) {
    const signed = mode.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
    const decoder = new ChunkedDecoder(
      signed ? seed : undefined,
      mode.endsWith('-TRAILER'),
      trailers,
      decodedLength,
    );
    return { body: pipeOnto(raw, decoder), trailers };
  }
  return { body: pipeOnto(raw, hashCheck(mode)), trailers };
}

/** raw piped into t, with raw's errors (a client gone mid-body) passed on instead of lost. */
function pipeOnto(raw: Readable, t: Transform): Readable {
  raw.on('error', (err) => t.destroy(err));
  raw.on('aborted', () => t.destroy(incomplete()));
  // A small body can end (and fail its check) before the service starts reading it; the error stays on the
  // stream (errored) for whoever reads it, and must not crash the process meanwhile.
  t.on('error', () => undefined);
  return raw.pipe(t);
}

function hashCheck(expected: string): Transform {
  const h = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      h.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      if (h.digest('hex') === expected) return done();
      done(
        new ApiError(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
      );
    },
  });
}

type State = 'header' | 'data' | 'data-end' | 'trailer' | 'done';

/** aws-chunked: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n` ... `0...\r\n`, trailers, `\r\n`. */
class ChunkedDecoder extends Transform {
  private state: State = 'header';
  private line = Buffer.alloc(0);
  private left = 0;
  private chunkSig = '';
  private chunkHash: Hash | undefined;
  private prevSig: string;
  private decoded = 0;
  private last = false;
  private readonly trailerLines: string[] = [];

  constructor(
    private readonly seed: SigV4Seed | undefined,
    private readonly hasTrailer: boolean,
    private readonly trailers: Record<string, string>,
    private readonly decodedLength: number | undefined,
  ) {
    super();
    this.prevSig = seed?.signature ?? '';
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      let at = 0;
      while (at < chunk.length) {
        if (this.state === 'data') {
          const n = Math.min(this.left, chunk.length - at);
          const piece = chunk.subarray(at, at + n);
          this.chunkHash?.update(piece);
          this.decoded += n;
          this.push(piece);
          this.left -= n;
          at += n;
          if (this.left === 0) this.state = 'data-end';
          continue;
        }
        if (this.state === 'done') throw malformed('data follows the final chunk');
        const nl = chunk.indexOf(0x0a, at);
        const end = nl === -1 ? chunk.length : nl + 1;
        this.line = Buffer.concat([this.line, chunk.subarray(at, end)]);
        at = end;
        if (this.line.length > MAX_LINE) throw malformed('a chunk header is too long');
        if (nl === -1) continue;
        const text = this.line.toString('latin1').replace(/\r?\n$/, '');
        this.line = Buffer.alloc(0);
        this.onLine(text);
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done') return done(incomplete());
    if (this.decodedLength !== undefined && this.decoded !== this.decodedLength) return done(incomplete());
    done();
  }

  private onLine(text: string): void {
    switch (this.state) {
      case 'data-end':
        if (text !== '') throw malformed('a chunk is longer than its size');
        this.endChunk();
        return;
      case 'header':
        return this.startChunk(text);
      case 'trailer':
        return this.onTrailer(text);
      default:
        throw malformed('unexpected data');
    }
  }

  private startChunk(text: string): void {
    const m = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(text);
    if (!m) throw malformed(`"${text.slice(0, 80)}" is not a chunk header`);
    if (this.seed && !m[2]) throw signatureMismatch();
    this.left = parseInt(m[1]!, 16);
    this.chunkSig = m[2] ?? '';
    this.chunkHash = this.seed ? createHash('sha256') : undefined;
    this.last = this.left === 0;
    if (!this.last) {
      this.state = 'data';
      return;
    }
    this.endChunk();
  }

  /** After a chunk's data: its signature, then the next chunk, or after the last one its trailers. */
  private endChunk(): void {
    if (this.seed) {
      const s = this.seed;
      const toSign = [
        'AWS4-HMAC-SHA256-PAYLOAD',
        s.amzDate,
        s.scope,
        this.prevSig,
        EMPTY_SHA256,
        this.chunkHash!.digest('hex'),
      ].join('\n');
      this.checkSignature(toSign, this.chunkSig);
    }
    // After the last chunk come the trailing headers, if any, and an empty line.
    this.state = this.last ? 'trailer' : 'header';
  }

  private onTrailer(text: string): void {
    if (text !== '') {
      const colon = text.indexOf(':');
      if (colon <= 0) throw malformed(`"${text.slice(0, 80)}" is not a trailing header`);
      const name = text.slice(0, colon).trim().toLowerCase();
      const value = text.slice(colon + 1).trim();
      if (name === 'x-amz-trailer-signature') {
        if (!this.seed) throw malformed('an unsigned payload has no trailer signature');
        const canonical = this.trailerLines.map((l) => `${l}\n`).join('');
        const s = this.seed;
        this.checkSignature(
          ['AWS4-HMAC-SHA256-TRAILER', s.amzDate, s.scope, this.prevSig, sha256Hex(canonical)].join('\n'),
          value,
        );
        return;
      }
      if (!this.hasTrailer) throw malformed('trailing headers were not announced in x-amz-trailer');
      this.trailers[name] = value;
      this.trailerLines.push(`${name}:${value}`);
      return;
    }
    this.state = 'done';
  }

  private checkSignature(toSign: string, given: string): void {
    const expected = Buffer.from(hmac(this.seed!.key, toSign).toString('hex'));
    const got = Buffer.from(given.toLowerCase());
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw signatureMismatch();
    this.prevSig = given.toLowerCase();
  }
}

function malformed(why: string): ApiError {
  return new ApiError(400, 'InvalidRequest', `The aws-chunked body is malformed: ${why}.`);
}

function incomplete(): ApiError {
  return new ApiError(
    400,
    'IncompleteBody',
    'You did not provide the number of bytes specified by the Content-Length HTTP header.',
  );
}

function signatureMismatch(): ApiError {
  return new ApiError(
    403,
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  );
}
