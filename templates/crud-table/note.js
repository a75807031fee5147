// What a note is: the rules the API applies, kept apart from the table so the tests can run anywhere.
const { randomUUID } = require('node:crypto');

/** Parses a request body into a note's fields; throws an Error with a readable message if it is not one. */
exports.parseNote = (raw) => {
  let body;
  try {
    body = JSON.parse(raw ?? '');
  } catch {
    throw new Error('the body is JSON, e.g. {"text":"buy milk"}');
  }
  if (typeof body?.text !== 'string' || body.text.trim() === '') {
    throw new Error('a note needs a "text" (a non-empty string)');
  }
  if (body.text.length > 10_000) throw new Error('"text" is at most 10000 characters');
  return { text: body.text };
};

/** A new note from its fields. */
exports.newNote = (fields, now = new Date()) => ({
  id: randomUUID(),
  text: fields.text,
  createdAt: now.toISOString(),
  updatedAt: now.toISOString(),
});
