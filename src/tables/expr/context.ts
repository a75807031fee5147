// The ExpressionAttributeNames and ExpressionAttributeValues of one request, shared by all of its expressions:
// every #name and :value an expression resolves is marked used, so that after all expressions are parsed the
// unused ones can be reported as DynamoDB does.

import type { AttributeValue } from '../types.js';
import { DynamoValidationError } from './errors.js';

export type ExpressionAttributeNames = Readonly<Record<string, string>>;
export type ExpressionAttributeValues = Readonly<Record<string, AttributeValue>>;

export class ExpressionContext {
  readonly names: ExpressionAttributeNames;
  readonly values: ExpressionAttributeValues;
  private readonly usedNames = new Set<string>();
  private readonly usedValues = new Set<string>();

  constructor(names?: ExpressionAttributeNames, values?: ExpressionAttributeValues) {
    this.names = names ?? {};
    this.values = values ?? {};
  }

  /** The attribute name a #placeholder stands for (marking it used), or undefined if it is not defined. */
  lookupName(ref: string): string | undefined {
    if (!Object.hasOwn(this.names, ref)) return undefined;
    this.usedNames.add(ref);
    return this.names[ref];
  }

  /** The value a :placeholder stands for (marking it used), or undefined if it is not defined. */
  lookupValue(ref: string): AttributeValue | undefined {
    if (!Object.hasOwn(this.values, ref)) return undefined;
    this.usedValues.add(ref);
    return this.values[ref];
  }

  unusedNames(): string[] {
    return Object.keys(this.names).filter((k) => !this.usedNames.has(k));
  }

  unusedValues(): string[] {
    return Object.keys(this.values).filter((k) => !this.usedValues.has(k));
  }

  /** Throws DynamoDB's error for the first kind of unused placeholder (names are reported before values). */
  assertAllUsed(): void {
    const names = this.unusedNames();
    if (names.length) {
      throw new DynamoValidationError(
        `Value provided in ExpressionAttributeNames unused in expressions: keys: {${names.join(', ')}}`,
      );
    }
    const values = this.unusedValues();
    if (values.length) {
      throw new DynamoValidationError(
        `Value provided in ExpressionAttributeValues unused in expressions: keys: {${values.join(', ')}}`,
      );
    }
  }
}
