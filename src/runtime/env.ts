// The environment a function sees, as AWS's Node.js runtime sets it up.
import type { FunctionInit } from '../protocol/messages.js';

/**
 * Replace process.env in place (not by assigning a new object): the real environ must change too, for
 * child processes, native code and Node's own TZ handling, and nothing of the stem cell's may survive.
 */
export function applyFunctionEnv(init: FunctionInit, runtimeDir: string, handler: string): void {
  const env = process.env;
  for (const key of Object.keys(env)) delete env[key];

  // Defaults the function may override (AWS treats these as non-reserved).
  env['PATH'] = '/usr/local/bin:/usr/bin:/bin';
  env['LANG'] = 'en_US.UTF-8';
  env['TZ'] = ':UTC';

  for (const [key, value] of Object.entries(init.env)) env[key] = String(value);

  // Reserved: AWS ignores a function's attempt to set these.
  const major = process.versions.node.split('.')[0] ?? '20';
  env['_HANDLER'] = handler;
  env['AWS_EXECUTION_ENV'] = `AWS_Lambda_nodejs${major}.x`;
  env['AWS_LAMBDA_FUNCTION_NAME'] = init.functionName;
  env['AWS_LAMBDA_FUNCTION_VERSION'] = init.functionVersion;
  env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] = String(init.memoryMB);
  env['AWS_LAMBDA_LOG_GROUP_NAME'] = init.logGroupName;
  env['AWS_LAMBDA_LOG_STREAM_NAME'] = init.logStreamName;
  env['AWS_LAMBDA_INITIALIZATION_TYPE'] = init.initializationType ?? 'on-demand';
  env['AWS_REGION'] = init.region;
  env['AWS_DEFAULT_REGION'] = init.region;
  env['LAMBDA_TASK_ROOT'] = init.codeDir;
  env['LAMBDA_RUNTIME_DIR'] = runtimeDir;
  delete env['AWS_LAMBDA_RUNTIME_API'];
}
