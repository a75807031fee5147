// What a job is, shared by the producer and the worker. No AWS SDK here, so the tests can load it anywhere.

/** Parses a request body or message body into a job; throws an Error with a readable message if it is not one. */
exports.parseJob = (raw) => {
  let job;
  try {
    job = JSON.parse(raw ?? '');
  } catch {
    throw new Error('a job is JSON, e.g. {"task":"resize"}');
  }
  if (typeof job !== 'object' || job === null || typeof job.task !== 'string' || job.task === '') {
    throw new Error('a job needs a "task" (a non-empty string)');
  }
  return job;
};

/** The work itself: replace this with yours. */
exports.runJob = async (job) => `done ${job.task}`;
