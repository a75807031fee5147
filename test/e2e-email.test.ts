// Incoming e-mail through a real SMTP client (nodemailer) against the listener: accepted mail invokes the
// function addressed with the parsed message; unknown recipients and oversized mail get SMTP's refusals.
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

describe('e-mail events', () => {
  let n: TestNimbus;
  let port = 0;

  beforeAll(async () => {
    n = await startTestNimbus({ smtpPort: 0, maxEmailBytes: 64 * 1024, emailInlineBytes: 1024 });
    // Nothing declares an address yet: no listener.
    expect(n.smtp()).toBeNull();
    await n.deploy(join(FIXTURES, 'mail'));
    const url = await eventually(async () => n.smtp());
    port = Number(new URL(url).port);
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  const send = (mail: Record<string, unknown>) =>
    createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true }).sendMail({
      from: 'Ada <ada@example.test>',
      ...mail,
    });
  const received = async (fn: string) => {
    const res = await fetch(`${n.apiUrl}/v1/functions/${fn}/logs`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    const { records } = (await res.json()) as { records: { logs: string }[] };
    return records.flatMap((r) => [...r.logs.matchAll(/MAIL (.*)\n/g)].map((m) => JSON.parse(m[1]!)));
  };

  it('invokes the addressed function with the parsed message, attachments inline below the size setting', async () => {
    const info = await send({
      to: 'orders@example.test',
      cc: 'someone@else.test',
      subject: 'Order 42',
      text: 'two boxes please',
      html: '<p>two boxes please</p>',
      attachments: [
        { filename: 'small.txt', content: 'tiny' },
        { filename: 'big.bin', content: Buffer.alloc(4096, 7) },
      ],
    });
    expect(info.accepted).toEqual(['orders@example.test']);
    const [mail] = await eventually(async () => {
      const m = await received('orders');
      return m.length > 0 ? m : undefined;
    });
    expect(mail).toMatchObject({
      eventSource: 'nimbus:email',
      envelope: { from: 'ada@example.test', to: ['orders@example.test'] },
      from: '"Ada" <ada@example.test>',
      to: ['orders@example.test'],
      cc: ['someone@else.test'],
      subject: 'Order 42',
      text: 'two boxes please',
      html: '<p>two boxes please</p>',
    });
    expect(mail.headers).toContainEqual({ name: 'subject', value: 'Order 42' });
    expect(mail.attachments).toEqual([
      {
        filename: 'small.txt',
        contentType: 'text/plain',
        size: 4,
        content: Buffer.from('tiny').toString('base64'),
      },
      { filename: 'big.bin', contentType: 'application/octet-stream', size: 4096 },
    ]);
  });

  it('routes any address of a domain to its catch-all', async () => {
    await send({ to: 'Help <help@support.example.test>', subject: 'Hi', text: 'hello' });
    const mails = await eventually(async () => {
      const m = await received('catchall');
      return m.length > 0 ? m : undefined;
    });
    expect(mails[0]).toMatchObject({ subject: 'Hi', envelope: { to: ['help@support.example.test'] } });
  });

  it('refuses an unknown recipient at RCPT with 550, invoking nothing', async () => {
    const err = (await send({ to: 'nobody@example.test', text: 'x' }).catch((e: unknown) => e)) as {
      responseCode?: number;
      response?: string;
    };
    expect(err.responseCode).toBe(550);
    expect(err.response).toMatch(/no function receives mail for <nobody@example\.test>/);
  });

  it('refuses mail over the size limit with 552', async () => {
    const err = (await send({ to: 'orders@example.test', text: 'x'.repeat(100 * 1024) }).catch(
      (e: unknown) => e,
    )) as { responseCode?: number };
    expect(err.responseCode).toBe(552);
  });
});
