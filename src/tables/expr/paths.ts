// Reading document paths in items, and listing the paths an expression reads.

import type { AttributeValue, Item } from '../types.js';
import type { Condition, DocumentPath, Operand, SetValue } from './ast.js';

/** The value at a document path, or undefined when any step of it is missing or of the wrong kind. */
export function getPath(item: Item | undefined, path: DocumentPath): AttributeValue | undefined {
  if (!item || path.length === 0) return undefined;
  const head = path[0];
  if (typeof head !== 'string' || !Object.hasOwn(item, head)) return undefined;
  let current: AttributeValue | undefined = item[head];
  for (let i = 1; i < path.length && current; i++) {
    const step = path[i] as string | number;
    if (typeof step === 'number') {
      current = 'L' in current ? current.L[step] : undefined;
    } else {
      current = 'M' in current && Object.hasOwn(current.M, step) ? current.M[step] : undefined;
    }
  }
  return current;
}

function operandPaths(operand: Operand, out: DocumentPath[]): void {
  switch (operand.kind) {
    case 'path':
      out.push(operand.path);
      break;
    case 'size':
      operandPaths(operand.operand, out);
      break;
    case 'if_not_exists':
      out.push(operand.path);
      operandPaths(operand.fallback, out);
      break;
    case 'list_append':
      operandPaths(operand.left, out);
      operandPaths(operand.right, out);
      break;
    case 'value':
      break;
  }
}

/** Every document path a condition reads, in order. */
export function conditionPaths(condition: Condition, out: DocumentPath[] = []): DocumentPath[] {
  switch (condition.kind) {
    case 'and':
    case 'or':
      conditionPaths(condition.left, out);
      conditionPaths(condition.right, out);
      break;
    case 'not':
      conditionPaths(condition.condition, out);
      break;
    case 'compare':
      operandPaths(condition.left, out);
      operandPaths(condition.right, out);
      break;
    case 'between':
      operandPaths(condition.operand, out);
      operandPaths(condition.lower, out);
      operandPaths(condition.upper, out);
      break;
    case 'in':
      operandPaths(condition.operand, out);
      condition.list.forEach((o) => operandPaths(o, out));
      break;
    case 'attribute_exists':
    case 'attribute_not_exists':
      out.push(condition.path);
      break;
    case 'attribute_type':
      operandPaths(condition.operand, out);
      break;
    case 'begins_with':
      operandPaths(condition.operand, out);
      operandPaths(condition.prefix, out);
      break;
    case 'contains':
      operandPaths(condition.operand, out);
      operandPaths(condition.value, out);
      break;
  }
  return out;
}

/** Every document path a SET value reads. */
export function setValuePaths(value: SetValue, out: DocumentPath[] = []): DocumentPath[] {
  if (value.kind === 'plus' || value.kind === 'minus') {
    operandPaths(value.left, out);
    operandPaths(value.right, out);
  } else {
    operandPaths(value, out);
  }
  return out;
}
