// A plain AWS Lambda handler: it runs unmodified on Nimbus.
// Through the gateway the name comes from ?name=; through `nimbus invoke` from the event itself.
exports.hello = async (event) => {
  const name = event.queryStringParameters?.name ?? event.name ?? 'world';
  console.log(`saying hello to ${name}`);
  return { message: `Hello, ${name}!` };
};
