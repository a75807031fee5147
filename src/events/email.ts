// Incoming e-mail: an SMTP listener (smtp-server; parsing by mailparser) that turns each accepted message into
// an async event for every function whose e-mail address it was sent to. It listens only while some function
// declares an e-mail event. Unknown recipients are refused at RCPT (550), mail over the size limit before or
// while its data arrives (552), and a message is acknowledged (250) only once its events are committed, so
// the sending server keeps (and retries) whatever Nimbus did not store.
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { EventQueue, FunctionRef, FunctionVersion } from '../store/types.js';
import type { TriggerSource } from './types.js';
import { timeOrderedId } from '../ids.js';

export interface EmailSourceOptions {
  queue: EventQueue;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest message accepted, bytes. */
  maxBytes: number;
  /** Attachments up to this size carry their content (base64) in the event; larger ones only their size. */
  inlineAttachmentBytes: number;
  /** Told after events were enqueued, so the async source runs them at once. */
  onEnqueued?: () => void;
  onError?: (err: unknown, context: string) => void;
}

export class EmailSource implements TriggerSource {
  readonly kind = 'email';
  readonly name = 'smtp listener';
  private routes = new Map<string, FunctionRef[]>();
  private server: SMTPServer | null = null;
  private listening: Promise<void> | null = null;
  private started = false;
  /** Where it listens, once it does. */
  port: number | null = null;

  constructor(private readonly o: EmailSourceOptions) {}

  sync(functions: readonly FunctionVersion[]): void {
    const routes = new Map<string, FunctionRef[]>();
    for (const f of functions) {
      for (const address of f.config.emails ?? []) {
        const list = routes.get(address) ?? [];
        list.push({ project: f.project, name: f.name });
        routes.set(address, list);
      }
    }
    this.routes = routes;
    if (this.started && routes.size > 0)
      void this.listen().catch((err: unknown) => this.o.onError?.(err, 'smtp'));
  }

  async start(): Promise<void> {
    this.started = true;
    if (this.routes.size > 0) await this.listen();
  }

  async stop(): Promise<void> {
    this.started = false;
    const server = this.server;
    this.server = null;
    this.listening = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Resolves once listening (starting the listener the first time a function declares an address). */
  listen(): Promise<void> {
    this.listening ??= new Promise<void>((resolve, reject) => {
      const server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['AUTH', 'STARTTLS'],
        size: this.o.maxBytes,
        banner: 'Nimbus',
        logger: false,
        onRcptTo: (address, _session, cb) => {
          if (this.recipients(address.address).length > 0) return cb();
          const err = Object.assign(new Error(`no function receives mail for <${address.address}>`), {
            responseCode: 550,
          });
          cb(err);
        },
        onData: (stream, session, cb) => this.receive(stream, session, cb),
      });
      server.on('error', (err) => this.o.onError?.(err, 'smtp'));
      const onListenError = (err: Error) => reject(err);
      server.server.once('error', onListenError);
      server.listen(this.o.port, this.o.host, () => {
        server.server.off('error', onListenError);
        this.port = (server.server.address() as AddressInfo).port;
        this.server = server;
        resolve();
      });
    });
    return this.listening;
  }

  /** The functions that receive mail for an address: exact matches, then the domain's catch-all. */
  private recipients(address: string): FunctionRef[] {
    const a = address.toLowerCase();
    const domain = a.slice(a.lastIndexOf('@') + 1);
    return [...(this.routes.get(a) ?? []), ...(this.routes.get(`*@${domain}`) ?? [])];
  }

  private receive(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): void {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      // smtp-server marks a message that ran past the SIZE limit rather than cutting the connection.
      if (stream.sizeExceeded) {
        cb(
          Object.assign(new Error(`message is larger than ${this.o.maxBytes} bytes`), { responseCode: 552 }),
        );
        return;
      }
      this.store(Buffer.concat(chunks), session).then(
        () => cb(),
        (err: unknown) => {
          this.o.onError?.(err, 'smtp: storing a message');
          cb(
            Object.assign(new Error('the message could not be stored; try again later'), {
              responseCode: 451,
            }),
          );
        },
      );
    });
  }

  /** One event per function addressed (a function named by two recipients gets the message once). */
  private async store(raw: Buffer, session: SMTPServerSession): Promise<void> {
    const mail = await simpleParser(raw);
    const rcpts = session.envelope.rcptTo.map((r) => r.address);
    const targets = new Map<string, FunctionRef>();
    for (const r of rcpts)
      for (const ref of this.recipients(r)) targets.set(`${ref.project}/${ref.name}`, ref);
    const event = JSON.stringify(this.emailEvent(mail, session, rcpts));
    for (const ref of targets.values()) {
      await this.o.queue.enqueue({
        id: timeOrderedId(),
        project: ref.project,
        functionName: ref.name,
        source: 'email',
        payload: event,
      });
    }
    this.o.onEnqueued?.();
  }

  /** An SES-like event: the envelope, the parsed headers and bodies, and the attachments. */
  private emailEvent(mail: ParsedMail, session: SMTPServerSession, rcpts: string[]): EmailEvent {
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    return {
      eventSource: 'nimbus:email',
      messageId: mail.messageId ?? null,
      envelope: { from, to: rcpts },
      from: mail.from?.text ?? from,
      to: addressText(mail.to),
      cc: addressText(mail.cc),
      subject: mail.subject ?? '',
      date: mail.date ? mail.date.toISOString() : null,
      text: mail.text ?? null,
      html: typeof mail.html === 'string' ? mail.html : null,
      headers: mail.headerLines.map((h) => ({
        name: h.key,
        value: h.line.slice(h.line.indexOf(':') + 1).trim(),
      })),
      attachments: mail.attachments.map((a) => ({
        filename: a.filename ?? null,
        contentType: a.contentType,
        size: a.size,
        ...(a.size <= this.o.inlineAttachmentBytes ? { content: a.content.toString('base64') } : {}),
      })),
    };
  }
}

/** The event an e-mail trigger delivers (Nimbus's own shape, not SES's); `nimbus event generate email` too. */
export interface EmailEvent {
  eventSource: 'nimbus:email';
  messageId: string | null;
  envelope: { from: string; to: string[] };
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  /** ISO time. */
  date: string | null;
  text: string | null;
  html: string | null;
  headers: { name: string; value: string }[];
  /** content (base64) only for attachments up to NIMBUS_EMAIL_INLINE_BYTES. */
  attachments: { filename: string | null; contentType: string; size: number; content?: string }[];
}

function addressText(a: ParsedMail['to']): string[] {
  if (!a) return [];
  return (Array.isArray(a) ? a : [a]).flatMap((x) => x.value.map((v) => v.address ?? '').filter(Boolean));
}
