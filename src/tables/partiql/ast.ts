// The parsed form of a PartiQL statement. Parameters (?) are already replaced by their values, and WHERE
// clauses and SET values are the expression engine's own Condition and UpdateAst, so the API evaluates a
// PartiQL statement with the same code as ConditionExpression and UpdateExpression.

import type { Condition, DocumentPath, UpdateAst } from '../expr/ast.js';
import type { Item } from '../types.js';

/** What UPDATE and DELETE return: the whole item or only the attributes the update wrote, before or after. */
export type Returning = 'ALL_OLD' | 'MODIFIED_OLD' | 'ALL_NEW' | 'MODIFIED_NEW';

export interface SelectStatement {
  readonly kind: 'select';
  readonly table: string;
  readonly index?: string;
  /** undefined: SELECT * */
  readonly projection?: readonly DocumentPath[];
  readonly where?: Condition;
  /** ORDER BY <sort key> [ASC | DESC]: the attribute and whether descending. */
  readonly orderBy?: { readonly path: DocumentPath; readonly descending: boolean };
}

export interface InsertStatement {
  readonly kind: 'insert';
  readonly table: string;
  readonly item: Item;
}

export interface UpdateStatement {
  readonly kind: 'update';
  readonly table: string;
  readonly update: UpdateAst;
  readonly where: Condition;
  readonly returning?: Returning;
}

export interface DeleteStatement {
  readonly kind: 'delete';
  readonly table: string;
  readonly where: Condition;
  readonly returning?: 'ALL_OLD';
}

export type Statement = SelectStatement | InsertStatement | UpdateStatement | DeleteStatement;
