// The AWS SDK v3 packages every function is given without bundling them (docs/concepts.md#runtime-environment).
// The one list: scripts/build.mjs builds these into dist/runtime/node_modules, and the packager leaves them out
// of a TypeScript bundle unless the service ships its own copy.

/** Each provided package, with the provided packages it requires instead of carrying its own copy. */
export const PROVIDED_SDK: Readonly<Record<string, readonly string[]>> = {
  '@aws-sdk/client-dynamodb': [],
  '@aws-sdk/lib-dynamodb': ['@aws-sdk/client-dynamodb'],
  '@aws-sdk/client-s3': [],
  '@aws-sdk/client-sqs': [],
  '@aws-sdk/client-lambda': [],
};

export function isProvidedSdk(specifier: string): boolean {
  return Object.hasOwn(PROVIDED_SDK, specifier);
}
