// A poller's pause: sleep until a timeout on the injected clock, or until woken (a send, a finished batch,
// a stop). A wake that comes while the poller is not sleeping is kept, so its next sleep returns at once.
import type { Clock, Timer } from '../clock/clock.js';

export class Waker {
  private pending: (() => void) | null = null;
  private early = false;

  constructor(private readonly clock: Clock) {}

  sleep(ms: number): Promise<void> {
    if (this.early) {
      this.early = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      let timer: Timer | null = null;
      const done = (): void => {
        timer?.cancel();
        this.pending = null;
        this.early = false;
        resolve();
      };
      this.pending = done;
      timer = this.clock.setTimeout(done, ms);
    });
  }

  wake(): void {
    if (this.pending) this.pending();
    else this.early = true;
  }
}
