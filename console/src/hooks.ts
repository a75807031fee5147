// Data hooks: a fetch that repeats while its page is open (the console's live views), and the hash route.
import { useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
}

/** Runs `load` now and then every `everyMs` (0: once) until the component goes or `key` changes. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, key: string): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      loader
        .current()
        .then((d) => live && (setData(d), setError(undefined)))
        .catch((e: unknown) => live && setError(e instanceof Error ? e : new Error(String(e))))
        .finally(() => {
          if (live && everyMs > 0) timer = setTimeout(run, everyMs);
        });
    };
    run();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [key, everyMs, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

/** The route in the URL's fragment, split into segments: "#/functions/hello" is ["functions", "hello"]. */
export function useRoute(): string[] {
  const read = (): string[] =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = (): void => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
