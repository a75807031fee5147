// DynamoDB's data model as Nimbus keeps it: attribute values in DynamoDB's own JSON shape (what the wire
// protocol carries), items, key schemas and table definitions. The API, the expression engine and the store
// all speak these types.

/** One attribute value, exactly as DynamoDB's JSON protocol writes it (B and BS are base64). */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] }
  | { M: Record<string, AttributeValue> }
  | { L: AttributeValue[] }
  | { BOOL: boolean }
  | { NULL: true };

export type Item = Record<string, AttributeValue>;

export type KeyType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  name: string;
  type: KeyType;
}

/** A table's or an index's primary key: a partition (HASH) attribute and an optional sort (RANGE) one. */
export interface KeySchema {
  partition: KeyAttribute;
  sort?: KeyAttribute;
}

export interface Projection {
  type: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  /** INCLUDE only: the non-key attributes the index keeps. */
  attributes?: string[];
}

export interface IndexDef {
  name: string;
  /** A global index has a partition key of its own; a local one shares the table's partition key. */
  kind: 'global' | 'local';
  key: KeySchema;
  projection: Projection;
}

export type StreamViewType = 'KEYS_ONLY' | 'NEW_IMAGE' | 'OLD_IMAGE' | 'NEW_AND_OLD_IMAGES';

export interface TableDef {
  name: string;
  key: KeySchema;
  indexes: IndexDef[];
  /** Set when the table records a stream of its changes. */
  stream?: { viewType: StreamViewType };
  /** The attribute whose number (epoch seconds) says when an item expires. */
  ttlAttribute?: string;
  billingMode: 'PAY_PER_REQUEST' | 'PROVISIONED';
  /** Kept and reported as given (Nimbus does not throttle by them). */
  provisionedThroughput?: { readCapacityUnits: number; writeCapacityUnits: number };
}
