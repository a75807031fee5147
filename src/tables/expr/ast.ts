// The parsed, resolved form of DynamoDB expressions. Names are already substituted (#n → its attribute name)
// and values already looked up (:v → its AttributeValue), so evaluation needs only the AST and the item. The
// legacy parameters (Expected, QueryFilter, AttributeUpdates, …) are converted into these same shapes.

import type { AttributeValue } from '../types.js';
import type { AttributeTypeName } from '../values.js';

/** One step of a document path: a map key (string) or a list index (number). The first step is a name. */
export type PathElement = string | number;
export type DocumentPath = readonly PathElement[];

export type Operand =
  | { readonly kind: 'path'; readonly path: DocumentPath }
  | { readonly kind: 'value'; readonly value: AttributeValue; readonly ref?: string }
  /** size(x): the length of a string, binary, set, list or map; absent for other types. */
  | { readonly kind: 'size'; readonly operand: Operand }
  /** Update expressions only: the attribute's value when it exists, else the fallback. */
  | { readonly kind: 'if_not_exists'; readonly path: DocumentPath; readonly fallback: Operand }
  /** Update expressions only: the concatenation of two lists. */
  | { readonly kind: 'list_append'; readonly left: Operand; readonly right: Operand };

export type Comparator = '=' | '<>' | '<' | '<=' | '>' | '>=';

export type Condition =
  | { readonly kind: 'compare'; readonly op: Comparator; readonly left: Operand; readonly right: Operand }
  | { readonly kind: 'between'; readonly operand: Operand; readonly lower: Operand; readonly upper: Operand }
  | { readonly kind: 'in'; readonly operand: Operand; readonly list: readonly Operand[] }
  | { readonly kind: 'and'; readonly left: Condition; readonly right: Condition }
  | { readonly kind: 'or'; readonly left: Condition; readonly right: Condition }
  | { readonly kind: 'not'; readonly condition: Condition }
  | { readonly kind: 'attribute_exists'; readonly path: DocumentPath }
  | { readonly kind: 'attribute_not_exists'; readonly path: DocumentPath }
  | { readonly kind: 'attribute_type'; readonly operand: Operand; readonly type: AttributeTypeName }
  | { readonly kind: 'begins_with'; readonly operand: Operand; readonly prefix: Operand }
  | { readonly kind: 'contains'; readonly operand: Operand; readonly value: Operand };

/** The right-hand side of a SET action: an operand, or the sum or difference of two. */
export type SetValue =
  | Operand
  | { readonly kind: 'plus'; readonly left: Operand; readonly right: Operand }
  | { readonly kind: 'minus'; readonly left: Operand; readonly right: Operand };

export interface SetAction {
  readonly path: DocumentPath;
  readonly value: SetValue;
}

export interface AddAction {
  readonly path: DocumentPath;
  readonly value: AttributeValue;
  /** AttributeUpdates' ADD, which also appends lists and words its type errors differently. */
  readonly legacy?: boolean;
}

export interface DeleteAction {
  readonly path: DocumentPath;
  readonly value: AttributeValue;
  readonly legacy?: boolean;
}

export interface UpdateAst {
  readonly set: readonly SetAction[];
  readonly remove: readonly DocumentPath[];
  readonly add: readonly AddAction[];
  readonly delete: readonly DeleteAction[];
}

/** The comparison a Query applies to the sort key (KeyConditions' operator names). */
export type SortKeyOperator = 'EQ' | 'LT' | 'LE' | 'GT' | 'GE' | 'BETWEEN' | 'BEGINS_WITH';

export interface KeyCondition {
  readonly partition: { readonly name: string; readonly value: AttributeValue };
  readonly sort?: {
    readonly name: string;
    readonly op: SortKeyOperator;
    /** One value, or two for BETWEEN (lower, upper). */
    readonly values: readonly AttributeValue[];
  };
}

/** Renders a path the way DynamoDB's messages do: a.b[0] → "[a, b, [0]]". */
export function formatPath(path: DocumentPath): string {
  return `[${path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join(', ')}]`;
}
