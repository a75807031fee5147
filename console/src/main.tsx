// The console's shell: sign-in, the navigation, and the page the URL's fragment names.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiFailure, currentSession, signIn, signOut, whenSignedOut, type Session } from './api.js';
import { useRoute } from './hooks.js';
import { Overview } from './pages/overview.js';
import { FunctionPage, Functions } from './pages/functions.js';
import { InvocationPage } from './pages/invocation.js';
import { Events, Schedules } from './pages/events.js';
import './style.css';

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    whenSignedOut(() => setSession(null));
    currentSession()
      .then((s) => setSession(s ?? null))
      .catch(() => setSession(null));
  }, []);
  if (session === undefined) return <main class="center">Loading…</main>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  return <Shell session={session} onSignedOut={() => setSession(null)} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('key') as HTMLInputElement;
    setBusy(true);
    setError(undefined);
    try {
      const s = await signIn(input.value.trim());
      // The key leaves the page once it has been exchanged for a session.
      input.value = '';
      onSignedIn(s);
    } catch (err) {
      setError(err instanceof ApiFailure ? `${err.message}${err.hint ? ` (${err.hint})` : ''}` : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="center">
      <form class="card signin" onSubmit={submit} autocomplete="off">
        <h1>Nimbus console</h1>
        <label for="key">API key</label>
        <input
          id="key"
          name="key"
          type="password"
          required
          autofocus
          spellcheck={false}
          placeholder="nmb_… or the key in <data dir>/api-key"
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <p class="muted">
          The key is sent once and kept by nobody but the server; the browser holds only a session cookie.
        </p>
      </form>
    </main>
  );
}

const NAV = [
  ['', 'Overview'],
  ['functions', 'Functions'],
  ['events', 'Events'],
  ['schedules', 'Schedules'],
] as const;

function Shell({ session, onSignedOut }: { session: Session; onSignedOut: () => void }) {
  const route = useRoute();
  const [first = '', second] = route;
  const out = async (): Promise<void> => {
    await signOut().catch(() => undefined);
    onSignedOut();
  };
  return (
    <div class="shell">
      <header>
        <a class="brand" href="#/">
          Nimbus
        </a>
        <nav aria-label="Pages">
          {NAV.map(([path, label]) => (
            <a href={`#/${path}`} aria-current={first === path ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who" title={`key ${session.keyId}`}>
          {session.project} · {session.role}
        </span>
        <button class="link" onClick={out}>
          Sign out
        </button>
      </header>
      <main>{page(first, second)}</main>
    </div>
  );
}

function page(first: string, second: string | undefined) {
  if (first === 'functions' && second) return <FunctionPage name={second} />;
  if (first === 'functions') return <Functions />;
  if (first === 'invocations' && second) return <InvocationPage id={second} />;
  if (first === 'events') return <Events />;
  if (first === 'schedules') return <Schedules />;
  return <Overview />;
}

render(<App />, document.getElementById('app')!);
