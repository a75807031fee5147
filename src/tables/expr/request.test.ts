import { describe, expect, it } from 'vitest';
import type { KeySchema } from '../types.js';
import { DynamoValidationError } from './errors.js';
import {
  applyUpdate,
  compileRequestExpressions,
  evaluateCondition,
  keyAttributeNames,
  project,
  type ExpressionOperation,
  type ExpressionRequest,
} from './index.js';

const table: KeySchema = { partition: { name: 'id', type: 'S' }, sort: { name: 'sk', type: 'N' } };

function error(
  operation: ExpressionOperation,
  request: ExpressionRequest,
  keySchema: KeySchema = table,
): string {
  try {
    compileRequestExpressions(operation, request, { keySchema });
  } catch (err) {
    expect(err).toBeInstanceOf(DynamoValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a DynamoValidationError');
}

describe('compileRequestExpressions', () => {
  it('refuses expression and non-expression parameters together', () => {
    expect(error('GetItem', { AttributesToGet: ['a'], ProjectionExpression: 'a' })).toBe(
      'Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}',
    );
    expect(
      error('UpdateItem', {
        UpdateExpression: 'SET a = :v',
        ExpressionAttributeValues: { ':v': { N: '1' } },
        Expected: { a: { Value: { N: '1' } } },
      }),
    ).toBe(
      'Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {UpdateExpression}',
    );
    expect(
      error('Query', {
        KeyConditionExpression: 'id = :v',
        FilterExpression: 'a = :v',
        QueryFilter: {},
        KeyConditions: {},
        ExpressionAttributeValues: { ':v': { S: 'x' } },
      }),
    ).toBe(
      'Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {QueryFilter, KeyConditions} Expression parameters: {FilterExpression, KeyConditionExpression}',
    );
  });

  it('allows KeyConditions with a FilterExpression', () => {
    const compiled = compileRequestExpressions(
      'Query',
      {
        KeyConditions: { id: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'k' }] } },
        FilterExpression: 'a = :v',
        ExpressionAttributeValues: { ':v': { N: '1' } },
      },
      { keySchema: table },
    );
    expect(compiled.keyCondition).toEqual({ partition: { name: 'id', value: { S: 'k' } } });
    expect(compiled.filter).toMatchObject({ kind: 'compare' });
  });

  it('refuses placeholders without expressions', () => {
    expect(error('GetItem', { ExpressionAttributeNames: { '#a': 'a' } })).toBe(
      'ExpressionAttributeNames can only be specified when using expressions',
    );
    expect(error('UpdateItem', { ExpressionAttributeValues: { ':v': { N: '1' } } })).toBe(
      'ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null',
    );
    expect(error('PutItem', { ExpressionAttributeValues: { ':v': { N: '1' } } })).toBe(
      'ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null',
    );
    expect(
      error('Scan', { ProjectionExpression: 'a', ExpressionAttributeValues: { ':v': { N: '1' } } }),
    ).toBe(
      'ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null',
    );
  });

  it('checks the placeholder maps themselves', () => {
    expect(error('GetItem', { ProjectionExpression: 'a', ExpressionAttributeNames: {} })).toBe(
      'ExpressionAttributeNames must not be empty',
    );
    expect(error('GetItem', { ProjectionExpression: 'a', ExpressionAttributeNames: { a: 'a' } })).toBe(
      'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"',
    );
    expect(
      error('PutItem', { ConditionExpression: 'a = :v', ExpressionAttributeValues: { v: { N: '1' } } }),
    ).toBe('ExpressionAttributeValues contains invalid key: Syntax error; key: "v"');
    expect(
      error('PutItem', { ConditionExpression: 'a = :v', ExpressionAttributeValues: { ':v': { N: 'one' } } }),
    ).toBe(
      'ExpressionAttributeValues contains invalid value: The parameter cannot be converted to a numeric value: one for key :v',
    );
    expect(
      error('PutItem', { ConditionExpression: 'a = :v', ExpressionAttributeValues: { ':v': { SS: [] } } }),
    ).toBe(
      'ExpressionAttributeValues contains invalid value: One or more parameter values were invalid: An string set  may not be empty for key :v',
    );
  });

  it("reports unused placeholders across all of the request's expressions, names first", () => {
    const request: ExpressionRequest = {
      UpdateExpression: 'SET #a = :v',
      ConditionExpression: '#b = :w',
      ExpressionAttributeNames: { '#a': 'a', '#b': 'b', '#c': 'c', '#d': 'd' },
      ExpressionAttributeValues: { ':v': { N: '1' }, ':w': { N: '2' }, ':x': { N: '3' } },
    };
    expect(error('UpdateItem', request)).toBe(
      'Value provided in ExpressionAttributeNames unused in expressions: keys: {#c, #d}',
    );
    request.ExpressionAttributeNames = { '#a': 'a', '#b': 'b' };
    expect(error('UpdateItem', request)).toBe(
      'Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}',
    );
    delete request.ExpressionAttributeValues?.[':x'];
    expect(() => compileRequestExpressions('UpdateItem', request, { keySchema: table })).not.toThrow();
  });

  it('reports an expression error before unused placeholders', () => {
    expect(
      error('PutItem', {
        ConditionExpression: 'a = :nope',
        ExpressionAttributeValues: { ':v': { N: '1' } },
      }),
    ).toBe(
      'Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope',
    );
  });

  it('compiles a Query: key condition, filter and projection', () => {
    const compiled = compileRequestExpressions(
      'Query',
      {
        KeyConditionExpression: 'id = :id AND sk > :n',
        FilterExpression: 'contains(#t, :tag)',
        ProjectionExpression: 'id, #t',
        ExpressionAttributeNames: { '#t': 'tags' },
        ExpressionAttributeValues: { ':id': { S: 'k' }, ':n': { N: '5' }, ':tag': { S: 'red' } },
      },
      { keySchema: table },
    );
    expect(compiled.keyCondition).toEqual({
      partition: { name: 'id', value: { S: 'k' } },
      sort: { name: 'sk', op: 'GT', values: [{ N: '5' }] },
    });
    const item = { id: { S: 'k' }, sk: { N: '6' }, tags: { SS: ['red', 'blue'] }, other: { S: 'x' } };
    expect(evaluateCondition(compiled.filter!, item)).toBe(true);
    expect(project(item, compiled.projection!)).toEqual({ id: { S: 'k' }, tags: { SS: ['red', 'blue'] } });
  });

  it('requires a key condition for a Query and checks it against the schema', () => {
    expect(error('Query', {})).toBe(
      'Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.',
    );
    expect(
      error('Query', { KeyConditionExpression: 'sk = :n', ExpressionAttributeValues: { ':n': { N: '1' } } }),
    ).toBe('Query condition missed key schema element: id');
    const unchecked = compileRequestExpressions('Query', {
      KeyConditionExpression: 'sk = :n',
      ExpressionAttributeValues: { ':n': { N: '1' } },
    });
    expect(unchecked.keyConditionUnchecked).toMatchObject({ kind: 'compare' });
  });

  it('refuses a Query filter on key attributes', () => {
    expect(
      error('Query', {
        KeyConditionExpression: 'id = :id',
        FilterExpression: 'sk > :n',
        ExpressionAttributeValues: { ':id': { S: 'k' }, ':n': { N: '1' } },
      }),
    ).toBe('Filter Expression can only contain non-primary key attributes: Primary key attribute: sk');
    expect(
      error('Query', {
        KeyConditions: { id: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'k' }] } },
        QueryFilter: { id: { ComparisonOperator: 'NOT_NULL' } },
      }),
    ).toBe('QueryFilter can only contain non-primary key attributes: Primary key attribute: id');
  });

  it('refuses updates of key attributes and nested paths into them', () => {
    expect(
      error('UpdateItem', {
        UpdateExpression: 'SET sk = :v',
        ExpressionAttributeValues: { ':v': { N: '1' } },
      }),
    ).toBe(
      'One or more parameter values were invalid: Cannot update attribute sk. This attribute is part of the key',
    );
    expect(error('UpdateItem', { AttributeUpdates: { id: { Action: 'PUT', Value: { S: 'x' } } } })).toBe(
      'One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key',
    );
    expect(error('GetItem', { ProjectionExpression: 'id.x' })).toBe(
      "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: id",
    );
  });

  it('converts legacy parameters', () => {
    const compiled = compileRequestExpressions(
      'UpdateItem',
      {
        AttributeUpdates: { n: { Action: 'ADD', Value: { N: '2' } } },
        Expected: { n: { ComparisonOperator: 'LT', AttributeValueList: [{ N: '10' }] } },
      },
      { keySchema: table },
    );
    const old = { id: { S: 'k' }, sk: { N: '1' }, n: { N: '3' } };
    expect(evaluateCondition(compiled.condition!, old)).toBe(true);
    expect(applyUpdate(compiled.update!, old, keyAttributeNames(table))).toEqual({ ...old, n: { N: '5' } });
    const scan = compileRequestExpressions('Scan', {
      ScanFilter: { n: { ComparisonOperator: 'GT', AttributeValueList: [{ N: '4' }] } },
      AttributesToGet: ['n'],
    });
    expect(evaluateCondition(scan.filter!, old)).toBe(false);
    expect(scan.projection).toEqual([['n']]);
  });
});
