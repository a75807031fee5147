// Errors a Store reports to its callers, shared by every backend so the API maps them to one response
// whichever store runs.

/** A deploy named a function that another service of the same project owns; the deploy wrote nothing. */
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

/** A deploy or lookup named a project that does not exist. */
export class ProjectNotFoundError extends Error {
  override name = 'ProjectNotFoundError';
  readonly code = 'ProjectNotFound' as const;
  constructor(readonly project: string) {
    super(`project "${project}" does not exist`);
  }
}

/** A project cannot be removed while it still holds functions. */
export class ProjectNotEmptyError extends Error {
  override name = 'ProjectNotEmptyError';
  readonly code = 'ProjectNotEmpty' as const;
  constructor(
    readonly project: string,
    readonly functions: number,
    /** What else it holds when it has no functions (its tables, buckets, queues or access keys). */
    others?: string,
  ) {
    super(
      functions > 0 || others === undefined
        ? `project "${project}" still has ${functions} function(s); remove them first`
        : `project "${project}" still holds ${others}; remove them first`,
    );
  }
}

/** The database was written by a newer Nimbus than this one. */
export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `database schema version ${found} is newer than this Nimbus supports (${supported}); upgrade Nimbus`,
    );
  }
}

/** A queue operation named a queue that does not exist in the project. */
export class QueueNotFoundError extends Error {
  override name = 'QueueNotFoundError';
  readonly code = 'QueueDoesNotExist' as const;
  constructor(
    readonly project: string,
    readonly queue: string,
  ) {
    super(`queue "${queue}" does not exist; declare it under "queues:" in a nimbus.yaml and deploy`);
  }
}

/** A message (or a deploy's queue) the store refuses; nothing was written. `field` names what is wrong. */
export class QueueInputError extends Error {
  override name = 'QueueInputError';
  readonly code = 'InvalidParameterValue' as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A deploy declared a queue that another service of the project owns; the deploy wrote nothing. */
export class QueueOwnedError extends Error {
  override name = 'QueueOwnedError';
  readonly code = 'QueueOwnedByOtherService' as const;
  constructor(
    readonly queue: string,
    readonly ownerService: string | null,
    readonly service: string,
  ) {
    super(
      ownerService === null
        ? `queue "${queue}" was created through the API; delete it there or rename it before deploying service "${service}"`
        : `queue "${queue}" belongs to service "${ownerService}"; remove it there or rename it before deploying service "${service}"`,
    );
  }
}

/** createQueue named a queue the project has already (declared by a manifest or created through the API). */
export class QueueExistsError extends Error {
  override name = 'QueueExistsError';
  readonly code = 'QueueAlreadyExists' as const;
  constructor(
    readonly project: string,
    readonly queue: string,
  ) {
    super(`queue "${queue}" exists already`);
  }
}

/** A table operation named a table that does not exist in the project (DynamoDB's words, which name nothing). */
export class TableNotFoundError extends Error {
  override name = 'TableNotFoundError';
  readonly code = 'ResourceNotFoundException' as const;
  constructor(
    readonly project: string,
    readonly table: string,
  ) {
    super('Requested resource not found');
  }
}

/** createTable named a table the project has already. */
export class TableExistsError extends Error {
  override name = 'TableExistsError';
  readonly code = 'ResourceInUseException' as const;
  constructor(
    readonly project: string,
    readonly table: string,
  ) {
    super(`Table already exists: ${table}`);
  }
}

/** An item, key or request the table refuses (DynamoDB's ValidationException, in its words); nothing was
 *  written. */
export class TableInputError extends Error {
  override name = 'TableInputError';
  readonly code = 'ValidationException' as const;
}

/** An object operation named a bucket the project does not have. */
export class BucketNotFoundError extends Error {
  override name = 'BucketNotFoundError';
  readonly code = 'NoSuchBucket' as const;
  constructor(
    readonly project: string,
    readonly bucket: string,
  ) {
    super('The specified bucket does not exist');
  }
}

/** deleteBucket on a bucket that still holds objects; nothing was deleted. */
export class BucketNotEmptyError extends Error {
  override name = 'BucketNotEmptyError';
  readonly code = 'BucketNotEmpty' as const;
  constructor(
    readonly project: string,
    readonly bucket: string,
  ) {
    super('The bucket you tried to delete is not empty');
  }
}

/** A write would grow an item collection (the items of one partition key value of a table with a local
 *  secondary index, with their index entries) past the store's limit, DynamoDB's 10 GB; nothing was written. */
export class ItemCollectionSizeLimitError extends Error {
  override name = 'ItemCollectionSizeLimitError';
  readonly code = 'ItemCollectionSizeLimitExceededException' as const;
  constructor(
    readonly table: string,
    readonly limit: number,
  ) {
    super('Item collection size limit exceeded');
  }
}

/** A multipart upload that does not exist (never created, completed or aborted); nothing was written. */
export class UploadNotFoundError extends Error {
  override name = 'UploadNotFoundError';
  readonly code = 'NoSuchUpload' as const;
  constructor(
    readonly project: string,
    readonly bucket: string,
    readonly uploadId: string,
  ) {
    super(`no upload ${uploadId} in bucket ${bucket} of project ${project}`);
  }
}

/** A write would take its project past its storage quota; nothing was written. */
export class StorageQuotaExceededError extends Error {
  override name = 'StorageQuotaExceededError';
  readonly code = 'StorageQuotaExceeded' as const;
  constructor(
    readonly project: string,
    readonly quotaBytes: number,
    /** What the project stored before the refused write. */
    readonly usageBytes: number,
  ) {
    super(
      `project "${project}" would exceed its storage quota of ${quotaBytes} bytes (it stores ${usageBytes}); ` +
        `delete data, or raise the quota with \`nimbus project quota ${project} --storage <size>\``,
    );
  }
}

/** What the quota triggers put in their error (SQLite: after the prefix in the message; PostgreSQL: its
 *  detail), a serialized fact rather than prose to parse. */
export const STORAGE_QUOTA_MARK = 'nimbus-storage-quota ';

export function storageQuotaError(json: string): StorageQuotaExceededError | undefined {
  try {
    const v = JSON.parse(json) as { project?: unknown; quota?: unknown; usage?: unknown };
    if (typeof v.project !== 'string') return undefined;
    return new StorageQuotaExceededError(v.project, Number(v.quota), Number(v.usage));
  } catch {
    return undefined;
  }
}
