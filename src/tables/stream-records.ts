// A stream record as DynamoDB Streams shows it, shared by the Streams API (GetRecords) and table triggers
// (the Lambda event's records), so a record has one ID and one shape wherever it is read.
import type { StreamRecord } from '../store/types.js';

/** DynamoDB Streams' sequence numbers are decimal strings of 21 to 40 digits. */
export function sequenceNumber(seq: number): string {
  return String(seq).padStart(21, '0');
}

/** The record without userIdentity, whose casing differs between the Streams API and Lambda events. */
export function streamRecordView(r: StreamRecord, region: string, viewType: string): Record<string, unknown> {
  return {
    // The record's number in 32 hex digits.
    eventID: r.seq.toString(16).padStart(32, '0'),
    eventName: r.eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(r.at / 1000),
      Keys: r.keys,
      ...(r.newImage ? { NewImage: r.newImage } : {}),
      ...(r.oldImage ? { OldImage: r.oldImage } : {}),
      SequenceNumber: sequenceNumber(r.seq),
      SizeBytes: r.sizeBytes,
      StreamViewType: viewType,
    },
  };
}
