// A handler string ("lib/api.v1.fn") split the way AWS's Node.js runtime splits it. Shared by the runtime, which
// loads it, and the host, which resolves its file from the code tree ahead of the cold start.

export interface HandlerParts {
  /** "lib/" for "lib/api.v1.fn"; may be "" or absolute. */
  moduleRoot: string;
  moduleName: string;
  /** "v1.fn": a property path into the module's exports. */
  handlerPath: string;
}

/** The parts, or why the name is malformed (the runtime turns that into Runtime.MalformedHandlerName). */
export function splitHandler(full: string): HandlerParts | { malformed: string } {
  if (full.includes('..')) {
    return {
      malformed: `'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    };
  }
  const slash = full.lastIndexOf('/');
  const base = full.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot < 0) return { malformed: 'Bad handler' };
  return {
    moduleRoot: full.slice(0, slash + 1),
    moduleName: base.slice(0, dot),
    handlerPath: base.slice(dot + 1),
  };
}
