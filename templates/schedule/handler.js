// A scheduled job. A schedule delivers an EventBridge "Scheduled Event" ({ source: 'aws.events', time, ... });
// `nimbus invoke tick` sends {} (or what you pass with --data), so the job runs the same either way.

exports.tick = async (event) => {
  const at = event?.time ?? new Date().toISOString();
  const trigger = event?.source === 'aws.events' ? 'schedule' : 'manual';
  // Do the job's work here: clean up, send a report, call an API...
  console.log(`tick at ${at} (${trigger})`);
  return { job: 'tick', trigger, at };
};
