import { json, type HttpEvent, type HttpResult } from './http';

interface Todo {
  id: string;
  title: string;
  done: boolean;
}

const items = new Map<string, Todo>();
let nextId = 1;
const maxItems = Number(process.env.MAX_ITEMS ?? 100);

export async function handler(event: HttpEvent): Promise<HttpResult> {
  const id = event.pathParameters?.id;
  switch (event.routeKey) {
    case 'GET /todos':
      return json(200, { items: [...items.values()] });
    case 'POST /todos': {
      const raw = event.isBase64Encoded
        ? Buffer.from(event.body ?? '', 'base64').toString()
        : (event.body ?? '');
      let title: unknown;
      try {
        title = (JSON.parse(raw) as { title?: unknown }).title;
      } catch {
        return json(400, { error: 'body must be JSON like {"title": "buy milk"}' });
      }
      if (typeof title !== 'string' || title.length === 0)
        return json(400, { error: 'title must be a non-empty string' });
      if (items.size >= maxItems) return json(409, { error: `at most ${maxItems} items` });
      const todo: Todo = { id: String(nextId++), title, done: false };
      items.set(todo.id, todo);
      return json(201, todo);
    }
    case 'GET /todos/{id}': {
      const todo = id ? items.get(id) : undefined;
      return todo ? json(200, todo) : json(404, { error: `no todo ${id}` });
    }
    case 'DELETE /todos/{id}':
      return id && items.delete(id) ? { statusCode: 204 } : json(404, { error: `no todo ${id}` });
    default:
      return json(405, { error: `unsupported route ${event.routeKey}` });
  }
}
