// Errors a Store reports to its callers. Kept apart from the SQLite code so the PostgreSQL store can throw the
// same classes and the API maps them to one response whichever backend runs.

/** A deploy named a function that another service owns; the deploy wrote nothing. */
export class StoreConflictError extends Error {
  override name = 'StoreConflictError';
  readonly code = 'FunctionOwnedByOtherService' as const;
  constructor(
    readonly functionName: string,
    readonly ownerService: string,
    readonly service: string,
  ) {
    super(
      `function "${functionName}" belongs to service "${ownerService}"; remove it there or rename it before deploying service "${service}"`,
    );
  }
}
