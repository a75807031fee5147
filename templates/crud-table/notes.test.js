// Run with `node --test`. The note rules are tested directly (no server, nothing stubbed). The API itself
// needs the table: with NIMBUS_URL set to the gateway (e.g. http://localhost:8080) after `nimbus deploy`,
// the last test creates, reads, updates and deletes a note through it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { newNote, parseNote } = require('./note.js');

test('a note needs a non-empty text', () => {
  assert.deepEqual(parseNote('{"text":"buy milk","extra":1}'), { text: 'buy milk' });
  assert.throws(() => parseNote('{"text":"  "}'), /needs a "text"/);
  assert.throws(() => parseNote('nope'), /is JSON/);
});

test('a new note has an id and timestamps', () => {
  const note = newNote({ text: 'x' }, new Date('2026-01-01T00:00:00Z'));
  assert.match(note.id, /^[0-9a-f-]{36}$/);
  assert.equal(note.createdAt, '2026-01-01T00:00:00.000Z');
  assert.notEqual(newNote({ text: 'x' }).id, note.id);
});

test(
  'the deployed API creates, reads, updates and deletes (when NIMBUS_URL is set)',
  { skip: !process.env.NIMBUS_URL },
  async () => {
    const url = `${process.env.NIMBUS_URL}/notes`;
    const created = await fetch(url, { method: 'POST', body: JSON.stringify({ text: 'buy milk' }) });
    assert.equal(created.status, 201);
    const { id } = await created.json();
    assert.equal((await (await fetch(`${url}/${id}`)).json()).text, 'buy milk');
    const put = await fetch(`${url}/${id}`, {
      method: 'PUT',
      body: JSON.stringify({ text: 'buy oat milk' }),
    });
    assert.equal((await put.json()).text, 'buy oat milk');
    assert.equal((await fetch(`${url}/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${url}/${id}`)).status, 404);
    assert.equal((await fetch(url, { method: 'POST', body: '{}' })).status, 400);
  },
);
