// DynamoDB's PartiQL subset: statements parsed by a hand-written tokenizer and recursive-descent parser into
// the expression engine's conditions and updates (src/tables/expr), and the key a WHERE clause addresses.
export type {
  DeleteStatement,
  InsertStatement,
  Returning,
  SelectStatement,
  Statement,
  UpdateStatement,
} from './ast.js';
export { parseStatement } from './parser.js';
export { conjuncts, fullKey, queryPlan } from './plan.js';
