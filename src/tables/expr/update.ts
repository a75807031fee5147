// Applying an update (UpdateExpression or AttributeUpdates) to an item, as DynamoDB does:
//  - every value a SET reads is read from the item as it was before the update;
//  - list indexes name positions in the list as it was (REMOVE a[1] SET a[3] = :v sets the old fourth
//    element), SET past the end of a list appends (several such elements in index order), REMOVE past the end
//    does nothing;
//  - intermediate maps are never created: a path through something missing or of the wrong type is "invalid
//    for update" (except for REMOVE when there is no item at all, which DynamoDB ignores);
//  - ADD creates a missing attribute; DELETE of the last members of a set removes the attribute;
//  - key attributes cannot be updated.

import type { AttributeValue, Item } from '../types.js';
import {
  addNumbers,
  attributeType,
  normalizeNumber,
  setMemberKeys,
  setOwn,
  subtractNumbers,
} from '../values.js';
import type { DocumentPath, Operand, SetValue, UpdateAst } from './ast.js';
import { DynamoValidationError } from './errors.js';
import { sizeOf } from './evaluate.js';
import { getPath } from './paths.js';

export const INVALID_PATH_FOR_UPDATE =
  'The document path provided in the update expression is invalid for update';
export const INCORRECT_OPERAND_TYPE = 'An operand in the update expression has an incorrect data type';
export const MISSING_ATTRIBUTE =
  'The provided expression refers to an attribute that does not exist in the item';
export const LEGACY_TYPE_MISMATCH = 'Type mismatch for attribute to update';

/** DynamoDB's refusal of an update that writes a key attribute. */
export function keyUpdateMessage(attribute: string): string {
  return `One or more parameter values were invalid: Cannot update attribute ${attribute}. This attribute is part of the key`;
}

/** Every path an update writes (SET, REMOVE, ADD, DELETE targets), in clause order. */
export function updatedPaths(update: UpdateAst): DocumentPath[] {
  return [
    ...update.set.map((a) => a.path),
    ...update.remove,
    ...update.add.map((a) => a.path),
    ...update.delete.map((a) => a.path),
  ];
}

/** Throws when the update writes (anywhere inside) one of the key attributes. */
export function assertKeyNotUpdated(update: UpdateAst, keyAttributes: readonly string[]): void {
  const heads = new Set(updatedPaths(update).map((p) => p[0]));
  for (const key of keyAttributes) {
    if (heads.has(key)) throw new DynamoValidationError(keyUpdateMessage(key));
  }
}

function strictOperand(operand: Operand, item: Item | undefined): AttributeValue {
  switch (operand.kind) {
    case 'value':
      return operand.value;
    case 'path': {
      const value = getPath(item, operand.path);
      if (!value) throw new DynamoValidationError(MISSING_ATTRIBUTE);
      return value;
    }
    case 'if_not_exists':
      return getPath(item, operand.path) ?? strictOperand(operand.fallback, item);
    case 'list_append': {
      const left = strictOperand(operand.left, item);
      if (!('L' in left)) throw new DynamoValidationError(INCORRECT_OPERAND_TYPE);
      const right = strictOperand(operand.right, item);
      if (!('L' in right)) throw new DynamoValidationError(INCORRECT_OPERAND_TYPE);
      return { L: [...left.L, ...right.L] };
    }
    case 'size': {
      const size = sizeOf(strictOperand(operand.operand, item));
      if (size === undefined) throw new DynamoValidationError(INCORRECT_OPERAND_TYPE);
      return { N: String(size) };
    }
  }
}

/** The value a SET action writes, read from the item as it is before the update. */
export function computeSetValue(value: SetValue, item: Item | undefined): AttributeValue {
  if (value.kind !== 'plus' && value.kind !== 'minus') return structuredClone(strictOperand(value, item));
  const left = strictOperand(value.left, item);
  if (!('N' in left)) throw new DynamoValidationError(INCORRECT_OPERAND_TYPE);
  const right = strictOperand(value.right, item);
  if (!('N' in right)) throw new DynamoValidationError(INCORRECT_OPERAND_TYPE);
  return { N: value.kind === 'plus' ? addNumbers(left.N, right.N) : subtractNumbers(left.N, right.N) };
}

type Container =
  | { readonly kind: 'map'; readonly map: Record<string, AttributeValue> }
  | { readonly kind: 'list'; readonly list: AttributeValue[] };

interface Target {
  readonly container: Container;
  readonly key: string | number;
}

/** The container holding a path's last step, or undefined when the path cannot be written. */
function resolveTarget(root: Record<string, AttributeValue>, path: DocumentPath): Target | undefined {
  let container: Container = { kind: 'map', map: root };
  for (let i = 0; i < path.length - 1; i++) {
    const step = path[i] as string | number;
    let child: AttributeValue | undefined;
    if (typeof step === 'number') {
      child = container.kind === 'list' ? container.list[step] : undefined;
    } else {
      child =
        container.kind === 'map' && Object.hasOwn(container.map, step) ? container.map[step] : undefined;
    }
    if (!child) return undefined;
    if (typeof path[i + 1] === 'number') {
      if (!('L' in child)) return undefined;
      container = { kind: 'list', list: child.L };
    } else {
      if (!('M' in child)) return undefined;
      container = { kind: 'map', map: child.M };
    }
  }
  const key = path[path.length - 1] as string | number;
  if (typeof key === 'number' ? container.kind !== 'list' : container.kind !== 'map') return undefined;
  return { container, key };
}

type SetType = 'SS' | 'NS' | 'BS';

function setMembers(value: AttributeValue, type: SetType): string[] {
  return (value as Record<SetType, string[]>)[type];
}

function makeSet(type: SetType, members: string[]): AttributeValue {
  return { [type]: members } as unknown as AttributeValue;
}

function addTo(existing: AttributeValue | undefined, value: AttributeValue, legacy: boolean): AttributeValue {
  const type = attributeType(value);
  if (!existing)
    return type === 'N' ? { N: normalizeNumber((value as { N: string }).N) } : structuredClone(value);
  if (attributeType(existing) !== type) {
    throw new DynamoValidationError(legacy ? LEGACY_TYPE_MISMATCH : INCORRECT_OPERAND_TYPE);
  }
  if ('N' in existing && 'N' in value) return { N: addNumbers(existing.N, value.N) };
  if ('L' in existing && 'L' in value) return { L: [...existing.L, ...structuredClone(value.L)] };
  if (type === 'SS' || type === 'NS' || type === 'BS') {
    const members = [...setMembers(existing, type)];
    const keys = setMemberKeys(type, members);
    for (const member of setMembers(value, type)) {
      const [key] = setMemberKeys(type, [member]);
      if (key !== undefined && !keys.has(key)) {
        keys.add(key);
        members.push(type === 'NS' ? normalizeNumber(member) : member);
      }
    }
    return makeSet(type, members);
  }
  throw new DynamoValidationError(legacy ? LEGACY_TYPE_MISMATCH : INCORRECT_OPERAND_TYPE);
}

function deleteFrom(
  existing: AttributeValue,
  value: AttributeValue,
  legacy: boolean,
): AttributeValue | undefined {
  const type = attributeType(value);
  if (attributeType(existing) !== type || (type !== 'SS' && type !== 'NS' && type !== 'BS')) {
    throw new DynamoValidationError(legacy ? LEGACY_TYPE_MISMATCH : INCORRECT_OPERAND_TYPE);
  }
  const removed = setMemberKeys(type, setMembers(value, type));
  const kept = setMembers(existing, type).filter((m) => {
    const [key] = setMemberKeys(type, [m]);
    return key === undefined || !removed.has(key);
  });
  return kept.length ? makeSet(type, kept) : undefined;
}

/**
 * Applies an update to an item (undefined: the item does not exist yet) and returns the new item; the given item
 * is not modified. `keyAttributes` are the table's key attribute names, which the update may not write.
 */
export function applyUpdate(
  update: UpdateAst,
  item: Item | undefined,
  keyAttributes: readonly string[] = [],
): Item {
  assertKeyNotUpdated(update, keyAttributes);
  const setValues = update.set.map((action) => computeSetValue(action.value, item));

  const root: Record<string, AttributeValue> = item ? structuredClone(item) : {};
  // List changes that move elements wait until every path has been resolved against the old positions.
  const listChanges = new Map<
    AttributeValue[],
    { removes: Set<number>; appends: [number, AttributeValue][] }
  >();
  const changesOf = (list: AttributeValue[]) => {
    let changes = listChanges.get(list);
    if (!changes) {
      changes = { removes: new Set(), appends: [] };
      listChanges.set(list, changes);
    }
    return changes;
  };
  const target = (path: DocumentPath): Target => {
    const t = resolveTarget(root, path);
    if (!t) throw new DynamoValidationError(INVALID_PATH_FOR_UPDATE);
    return t;
  };
  const read = ({ container, key }: Target): AttributeValue | undefined => {
    if (container.kind === 'map')
      return Object.hasOwn(container.map, key) ? container.map[key as string] : undefined;
    return container.list[key as number];
  };
  const write = ({ container, key }: Target, value: AttributeValue): void => {
    if (container.kind === 'map') {
      setOwn(container.map, key as string, value);
    } else if ((key as number) < container.list.length) {
      container.list[key as number] = value;
    } else {
      changesOf(container.list).appends.push([key as number, value]);
    }
  };
  const erase = ({ container, key }: Target): void => {
    if (container.kind === 'map') {
      delete container.map[key as string];
    } else if ((key as number) < container.list.length) {
      changesOf(container.list).removes.add(key as number);
    }
  };

  update.set.forEach((action, i) => write(target(action.path), setValues[i] as AttributeValue));
  for (const path of update.remove) {
    const t = resolveTarget(root, path);
    if (t) erase(t);
    else if (item) throw new DynamoValidationError(INVALID_PATH_FOR_UPDATE);
  }
  for (const action of update.add) {
    const t = target(action.path);
    write(t, addTo(read(t), action.value, action.legacy === true));
  }
  for (const action of update.delete) {
    const t = target(action.path);
    const existing = read(t);
    if (!existing) continue;
    const rest = deleteFrom(existing, action.value, action.legacy === true);
    if (rest) write(t, rest);
    else erase(t);
  }

  for (const [list, { removes, appends }] of listChanges) {
    for (const index of [...removes].sort((a, b) => b - a)) list.splice(index, 1);
    for (const [, value] of appends.sort((a, b) => a[0] - b[0])) list.push(value);
  }
  return root;
}
