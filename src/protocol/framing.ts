// Framing of the host ⇄ sandbox channel: one JSON message per line. Shared by both ends so they cannot
// disagree about it.

/** Encodes one message as a line. Throws if the message cannot be serialized. */
export function encodeLine(msg: unknown): string {
  return `${JSON.stringify(msg)}\n`;
}

/**
 * Returns a function that takes the channel's text as it arrives, in chunks of any size, and calls
 * `onMessage` once per complete line. Lines that are not JSON are skipped: a confused or hostile peer gets
 * nothing for them.
 */
export function lineDecoder(
  onMessage: (msg: unknown) => void,
  limit?: { maxLine: number; onOverflow: () => void },
): (chunk: string) => void {
  // Parts of a line not yet ended; only the newest chunk is searched for a newline, so a long line costs
  // linear time however many chunks it arrives in.
  let parts: string[] = [];
  let partsLength = 0;
  return (chunk) => {
    let nl = chunk.indexOf('\n');
    if (nl < 0) {
      parts.push(chunk);
      partsLength += chunk.length;
      // A peer that never ends its line must not make the reader hold an unbounded string.
      if (limit && partsLength > limit.maxLine) {
        parts = [];
        partsLength = 0;
        limit.onOverflow();
      }
      return;
    }
    let start = 0;
    while (nl >= 0) {
      let line = chunk.slice(start, nl);
      if (parts.length > 0) {
        parts.push(line);
        line = parts.join('');
        parts = [];
        partsLength = 0;
      }
      if (line.length > 0) deliver(line, onMessage);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) {
      parts.push(chunk.slice(start));
      partsLength += chunk.length - start;
    }
  };
}

function deliver(line: string, onMessage: (msg: unknown) => void): void {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg !== undefined) onMessage(msg);
}
