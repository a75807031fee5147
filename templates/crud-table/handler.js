// GET/POST /notes and GET/PUT/DELETE /notes/{id} over table "notes". lib-dynamodb and client-dynamodb are
// the AWS SDK v3 packages Nimbus provides to every function (nothing to install or bundle), and the
// environment Nimbus gives the function points them at its tables.
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const {
  DynamoDBDocumentClient,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} = require('@aws-sdk/lib-dynamodb');
const { newNote, parseNote } = require('./note.js');

const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const TableName = 'notes';

exports.handler = async (event) => {
  const id = event.pathParameters?.id;
  const body = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : event.body;
  try {
    switch (event.routeKey) {
      case 'GET /notes': {
        const { Items } = await db.send(new ScanCommand({ TableName, Limit: 100 }));
        return json(200, { notes: Items ?? [] });
      }
      case 'POST /notes': {
        const note = newNote(parseNote(body));
        await db.send(new PutCommand({ TableName, Item: note }));
        return json(201, note);
      }
      case 'GET /notes/{id}': {
        const { Item } = await db.send(new GetCommand({ TableName, Key: { id } }));
        return Item ? json(200, Item) : json(404, { error: `no note ${id}` });
      }
      case 'PUT /notes/{id}': {
        const { text } = parseNote(body);
        try {
          const { Attributes } = await db.send(
            new UpdateCommand({
              TableName,
              Key: { id },
              UpdateExpression: 'SET #text = :text, updatedAt = :now',
              ConditionExpression: 'attribute_exists(id)',
              ExpressionAttributeNames: { '#text': 'text' },
              ExpressionAttributeValues: { ':text': text, ':now': new Date().toISOString() },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return json(200, Attributes);
        } catch (err) {
          if (err.name === 'ConditionalCheckFailedException') return json(404, { error: `no note ${id}` });
          throw err;
        }
      }
      case 'DELETE /notes/{id}': {
        const { Attributes } = await db.send(
          new DeleteCommand({ TableName, Key: { id }, ReturnValues: 'ALL_OLD' }),
        );
        return Attributes ? { statusCode: 204 } : json(404, { error: `no note ${id}` });
      }
      default:
        return json(405, { error: `unsupported route ${event.routeKey}` });
    }
  } catch (err) {
    // parseNote's errors are the caller's; anything else is ours, and Nimbus logs it.
    if (err.name === 'Error') return json(400, { error: err.message });
    throw err;
  }
};

function json(statusCode, value) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}
