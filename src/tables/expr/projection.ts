// Projecting an item onto document paths (ProjectionExpression, AttributesToGet): nested paths keep their
// structure (a.b gives {a: {b: …}}), list indexes pick elements, and the elements picked from one list are
// returned as a shorter list in index order (a[3], a[1] gives {a: [a[1], a[3]]}). Missing paths are left out.

import type { AttributeValue, Item } from '../types.js';
import { setOwn } from '../values.js';
import type { DocumentPath } from './ast.js';
import { getPath } from './paths.js';

type Node =
  | { kind: 'leaf'; value: AttributeValue }
  | { kind: 'map'; children: Map<string, Node> }
  | { kind: 'list'; children: Map<number, Node> };

function build(node: Node): AttributeValue {
  if (node.kind === 'leaf') return structuredClone(node.value);
  if (node.kind === 'list') {
    return { L: [...node.children.entries()].sort((a, b) => a[0] - b[0]).map(([, child]) => build(child)) };
  }
  const m: Record<string, AttributeValue> = {};
  for (const [key, child] of node.children) setOwn(m, key, build(child));
  return { M: m };
}

/** The parts of an item that the paths name. */
export function project(item: Item, paths: readonly DocumentPath[]): Item {
  const root = new Map<string, Node>();
  for (const path of paths) {
    const value = getPath(item, path);
    if (value === undefined) continue;
    let children: Map<string | number, Node> = root as Map<string | number, Node>;
    for (let i = 0; i < path.length; i++) {
      const step = path[i] as string | number;
      if (i === path.length - 1) {
        children.set(step, { kind: 'leaf', value });
        break;
      }
      let child = children.get(step);
      if (!child) {
        child =
          typeof path[i + 1] === 'number'
            ? { kind: 'list', children: new Map<number, Node>() }
            : { kind: 'map', children: new Map<string, Node>() };
        children.set(step, child);
      }
      // A path inside one already projected whole (only possible in legacy requests) adds nothing.
      if (child.kind === 'leaf') break;
      children = child.children as Map<string | number, Node>;
    }
  }
  const result: Item = {};
  for (const [key, node] of root) setOwn(result, key, build(node));
  return result;
}
