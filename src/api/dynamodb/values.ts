// Attribute values as requests carry them, checked the way DynamoDB checks them before anything is read or
// written: exactly one type per value, no empty sets, no duplicate set members, valid numbers and base64.
import type { AttributeValue } from '../../tables/types.js';
import { validation } from './protocol.js';

const TYPES = new Set(['S', 'N', 'B', 'SS', 'NS', 'BS', 'M', 'L', 'BOOL', 'NULL']);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Throws DynamoDB's ValidationException for a value no DynamoDB would accept. `checkNumber` validates a
 *  number's text (38 digits, range) and throws its own message. */
export function checkValue(
  v: unknown,
  checkNumber: (n: string) => void,
  depth = 0,
): asserts v is AttributeValue {
  if (depth > 32) throw validation('Nesting Levels have exceeded supported limits');
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw validation('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes');
  }
  const keys = Object.keys(v);
  if (keys.length === 0) {
    throw validation('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes');
  }
  if (keys.length > 1) {
    throw validation(
      'Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes',
    );
  }
  const type = keys[0]!;
  if (!TYPES.has(type)) {
    throw validation('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes');
  }
  const x = (v as Record<string, unknown>)[type];
  switch (type) {
    case 'S':
      if (typeof x !== 'string') throw serialization(type);
      return;
    case 'N':
      if (typeof x !== 'string') throw serialization(type);
      checkNumber(x);
      return;
    case 'B':
      if (typeof x !== 'string' || !BASE64.test(x)) throw serialization(type);
      return;
    case 'BOOL':
      if (typeof x !== 'boolean') throw serialization(type);
      return;
    case 'NULL':
      if (x !== true)
        throw validation(
          'One or more parameter values were invalid: Null attribute value types must have the value of true',
        );
      return;
    case 'SS':
    case 'NS':
    case 'BS': {
      if (!Array.isArray(x) || x.some((e) => typeof e !== 'string')) throw serialization(type);
      if (x.length === 0)
        throw validation(
          'One or more parameter values were invalid: An string set  may not be empty'.replace(
            'string',
            type === 'SS' ? 'string' : type === 'NS' ? 'number' : 'binary',
          ),
        );
      if (type === 'NS') for (const n of x as string[]) checkNumber(n);
      if (type === 'BS') for (const b of x as string[]) if (!BASE64.test(b)) throw serialization(type);
      if (new Set(x as string[]).size !== x.length) {
        throw validation(
          `One or more parameter values were invalid: Input collection ${JSON.stringify(x)} contains duplicates.`,
        );
      }
      return;
    }
    case 'M':
      if (x === null || typeof x !== 'object' || Array.isArray(x)) throw serialization(type);
      for (const e of Object.values(x as object)) checkValue(e, checkNumber, depth + 1);
      return;
    case 'L':
      if (!Array.isArray(x)) throw serialization(type);
      for (const e of x) checkValue(e, checkNumber, depth + 1);
      return;
  }
}

function serialization(type: string) {
  return validation(
    `One or more parameter values were invalid: Supplied AttributeValue has a malformed ${type} value`,
  );
}
