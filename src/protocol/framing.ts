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
  let pending = '';
  return (chunk) => {
    pending += chunk;
    // A peer that never ends its line must not make the reader hold an unbounded string.
    if (limit && pending.length > limit.maxLine && pending.indexOf('\n') < 0) {
      pending = '';
      limit.onOverflow();
      return;
    }
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.length > 0) {
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          msg = undefined;
        }
        if (msg !== undefined) onMessage(msg);
      }
      nl = pending.indexOf('\n');
    }
  };
}
