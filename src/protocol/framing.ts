// Framing of the host ⇄ sandbox channel: one JSON message per line. Shared by both ends so they cannot
// disagree about it.
//
// A line may carry a payload that is already JSON text (a result's) after a tab: `{"t":"result",...}\t<json>`.
// The text goes as it is, neither escaped into a JSON string by the sender nor unescaped by the reader, so
// the only parse of a result's payload is the one its consumer needs (the gateway's mapping). JSON text as
// JSON.stringify writes it holds no raw tab or newline (both are escaped inside strings), so the first tab
// of a line ends its message.

/** Encodes one message as a line, with `payload` (JSON text, set as the message's payload field when read)
 *  after a tab. Throws if the message cannot be serialized. */
export function encodeLine(msg: unknown, payload?: string): string {
  return payload === undefined ? `${JSON.stringify(msg)}\n` : `${JSON.stringify(msg)}\t${payload}\n`;
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
  const tab = line.indexOf('\t');
  let msg: unknown;
  try {
    msg = JSON.parse(tab < 0 ? line : line.slice(0, tab));
  } catch {
    return;
  }
  if (tab >= 0) {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return;
    (msg as { payload?: unknown }).payload = line.slice(tab + 1);
  }
  if (msg !== undefined) onMessage(msg);
}
