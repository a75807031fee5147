// The manifest schema: what a valid nimbus.yaml becomes, and the one line each mistake produces.
import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest } from './manifest.js';

const fn = (body: string) =>
  `service: s\nfunctions:\n  f: { handler: src/a.get${body ? `, ${body}` : ''} }\n`;
const problem = (yaml: string): string => {
  try {
    parseManifest(yaml);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as Error).message;
  }
  throw new Error('expected a ManifestError');
};

describe('parseManifest', () => {
  it('parses every field with its defaults', () => {
    const m = parseManifest(`service: todo
functions:
  getItem:
    handler: src/items.get
    memory: 256
    timeout: 10
    environment: { TABLE: items, LIMIT: 5 }
    concurrency: { reserved: 10, provisioned: 2, perInstance: 4, scaleOut: 500 }
    keepAlive: hybrid
    events:
      - http: GET /items/{id}
      - http: { route: "ANY /legacy/{proxy+}", payload: "1.0" }
  other:
    handler: index.handler
`);
    expect(m.service).toBe('todo');
    expect(m.functions[0]).toEqual({
      name: 'getItem',
      handler: 'src/items.get',
      runtime: 'nodejs',
      memory: 256,
      timeout: 10,
      environment: { TABLE: 'items', LIMIT: '5' },
      reservedConcurrency: 10,
      provisionedConcurrency: 2,
      perInstanceConcurrency: 4,
      scaleOutPer10s: 500,
      keepAlive: 'hybrid',
      routes: [
        { method: 'GET', path: '/items/{id}', payload: '2.0' },
        { method: 'ANY', path: '/legacy/{proxy+}', payload: '1.0' },
      ],
    });
    expect(m.functions[1]).toMatchObject({ memory: 128, timeout: 3, environment: {}, routes: [] });
  });

  it('carries ephemeralStorage only when it is not the default 512 MB', () => {
    expect(parseManifest(fn('ephemeralStorage: 600')).functions[0]!.ephemeralStorage).toBe(600);
    expect(parseManifest(fn('ephemeralStorage: 512')).functions[0]).not.toHaveProperty('ephemeralStorage');
    expect(parseManifest(fn('')).functions[0]).not.toHaveProperty('ephemeralStorage');
  });

  it('carries the JSON log format and its levels, and nothing for Text (the default)', () => {
    const f = parseManifest(fn('logFormat: JSON, applicationLogLevel: DEBUG, systemLogLevel: WARN'))
      .functions[0]!;
    expect(f).toMatchObject({ logFormat: 'JSON', applicationLogLevel: 'DEBUG', systemLogLevel: 'WARN' });
    expect(parseManifest(fn('logFormat: Text')).functions[0]).not.toHaveProperty('logFormat');
    expect(parseManifest(fn('')).functions[0]).not.toHaveProperty('logFormat');
  });

  it("refuses log settings that are not Lambda's, naming the field", () => {
    expect(problem(fn('logFormat: json'))).toBe(
      'nimbus.yaml: functions.f.logFormat: must be one of "Text", "JSON", not the string "json"',
    );
    expect(problem(fn('logFormat: JSON, applicationLogLevel: VERBOSE'))).toMatch(
      /^nimbus\.yaml: functions\.f\.applicationLogLevel: must be one of "TRACE", .*"FATAL", not the string "VERBOSE"$/,
    );
    expect(problem(fn('logFormat: JSON, systemLogLevel: ERROR'))).toMatch(
      /^nimbus\.yaml: functions\.f\.systemLogLevel: must be one of "DEBUG", "INFO", "WARN", not the string "ERROR"$/,
    );
    expect(problem(fn('applicationLogLevel: WARN'))).toBe(
      'nimbus.yaml: functions.f.applicationLogLevel: filters JSON logs only, and the log format is Text',
    );
    expect(problem(fn('logFormat: JSON, environment: { AWS_LAMBDA_LOG_LEVEL: DEBUG }'))).toBe(
      'nimbus.yaml: functions.f.environment.AWS_LAMBDA_LOG_LEVEL: is set by the platform from applicationLogLevel when logFormat is JSON',
    );
  });

  it('carries network only when it is "none" (outbound is the default)', () => {
    expect(parseManifest(fn('network: none')).functions[0]!.network).toBe('none');
    expect(parseManifest(fn('network: outbound')).functions[0]).not.toHaveProperty('network');
    expect(parseManifest(fn('')).functions[0]).not.toHaveProperty('network');
  });

  it.each([
    [fn('network: off'), 'functions.f.network: network must be "outbound" (the default) or "none"'],
    [fn('network: false'), 'functions.f.network: network must be "outbound" (the default) or "none"'],
    [fn('memory: 64'), 'functions.f.memory: must be at least 128'],
    [fn('ephemeralStorage: 256'), 'functions.f.ephemeralStorage: must be at least 512'],
    [fn('ephemeralStorage: 20000'), 'functions.f.ephemeralStorage: must be at most 10240'],
    [fn('memory: "256"'), 'functions.f.memory: must be a number, not the string "256"'],
    [fn('timeout: 901'), 'functions.f.timeout: must be at most 900'],
    [fn('keepAlive: forever'), 'functions.f.keepAlive: must be "fixed", "hybrid" or a number of seconds'],
    [fn('runtime: python'), 'functions.f.runtime: runtime must be "nodejs"'],
    [fn('memroy: 256'), 'functions.f: unknown field "memroy"'],
    [fn('events: [{sqs: q}]'), 'functions.f.events.0: unknown field "sqs"'],
    [fn('events: [{http: "GET items"}]'), 'is not "METHOD /path"'],
    [fn('events: [{http: "FETCH /x"}]'), 'method "FETCH" is not one of'],
    [fn('events: [{http: "GET /a/{p+}/b"}]'), 'greedy parameter {p+} must be the last segment'],
    [fn('environment: { AWS_REGION: x }'), 'functions.f.environment.AWS_REGION: is reserved by the runtime'],
    [fn('environment: { "1x": y }'), 'is not a valid environment variable name'],
    [fn('concurrency: { reserved: 1, provisioned: 2 }'), 'provisioned instances cannot exceed reserved'],
    ['service: s\nfunctions: {}\n', 'functions: declare at least one function'],
    ['functions:\n  f: { handler: a.b }\n', 'service: is required'],
    ['- 1\n', 'must be a mapping with "service" and "functions"'],
    ['service: s\nfunctions:\n  f: {handler: a.b\n', 'is not valid YAML'],
    [fn('handler: nodot'), ''],
    [
      'service: s\nfunctions:\n  f: { handler: ../../etc/passwd.x }\n',
      'functions.f.handler: handler "../../etc/passwd.x" leaves the service',
    ],
    [
      'service: s\nfunctions:\n  f: { handler: /etc/passwd.x }\n',
      'functions.f.handler: handler "/etc/passwd.x" is an absolute path',
    ],
    [
      'service: s\nfunctions:\n  f: { handler: a/../../x.h }\n',
      'functions.f.handler: handler "a/../../x.h" leaves the service folder',
    ],
    [
      'service: s\nfunctions:\n  f: { handler: a/../b.h }\n',
      'functions.f.handler: handler "a/../b.h" must not contain ".." segments',
    ],
    [
      'service: s\nfunctions:\n  f: { handler: "a\\0b.h" }\n',
      'functions.f.handler: handler "a\\u0000b.h" contains a control character',
    ],
    ['service: s\nfunctions:\n  f: { handler: "..\\\\x.h" }\n', 'contains a backslash'],
  ])('%j reads "%s"', (yaml, expected) => {
    const message = problem(yaml);
    expect(message.startsWith('nimbus.yaml:')).toBe(true);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });

  it('refuses an escaping handler with the same words whether or not the target exists on the host', () => {
    const exists = problem('service: s\nfunctions:\n  f: { handler: /etc/passwd.x }\n');
    const missing = problem('service: s\nfunctions:\n  f: { handler: /nimbus-no-such-dir/passwd.x }\n');
    expect(missing.replace('/nimbus-no-such-dir/', '/etc/')).toBe(exists);
  });

  it('refuses two functions on the same route', () => {
    expect(
      problem(`service: s
functions:
  a: { handler: x.a, events: [{ http: "GET /items/{id}" }] }
  b: { handler: x.b, events: [{ http: "GET /items/{other}" }] }
`),
    ).toContain('is already used by function "a"');
  });

  it('reads e-mail events, lowercased, and refuses what is not an address', () => {
    const m = parseManifest(
      'service: s\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - email: { address: Orders@Example.test }\n      - email: { address: "*@support.example.test" }\n',
    );
    expect(m.functions[0]?.emails).toEqual(['orders@example.test', '*@support.example.test']);
    expect(() =>
      parseManifest(
        'service: s\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - email: { address: not-an-address }\n',
      ),
    ).toThrow(/functions\.f\.events\.0\.email\.address: address must be an e-mail address/);
    expect(() =>
      parseManifest(
        'service: s\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - email: { address: a@b.test }\n        http: GET /x\n',
      ),
    ).toThrow(/exactly one of "http", "schedule", "email", "queue", "table" or "storage"/);
  });

  it('reads queues with SQS defaults and queue events with Lambda defaults', () => {
    const m = parseManifest(`service: s
queues:
  orders: { visibilityTimeout: 60, deadLetterQueue: orders-dlq }
  orders-dlq:
  jobs.fifo: { contentBasedDeduplication: true }
functions:
  f:
    handler: h.f
    events:
      - queue: orders
      - queue:
          name: jobs.fifo
          batchSize: 5
          maximumConcurrency: 3
          filterCriteria: { filters: [{ pattern: { body: { kind: [a] } } }] }
`);
    expect(m.queues).toEqual([
      {
        name: 'orders',
        fifo: false,
        contentBasedDeduplication: false,
        visibilityTimeout: 60,
        messageRetentionPeriod: 345600,
        delaySeconds: 0,
        maximumMessageSize: 262144,
        deadLetterQueue: 'orders-dlq',
        maxReceiveCount: 5,
      },
      expect.objectContaining({ name: 'orders-dlq', fifo: false, visibilityTimeout: 30 }),
      expect.objectContaining({ name: 'jobs.fifo', fifo: true, contentBasedDeduplication: true }),
    ]);
    expect(m.functions[0]?.queueTriggers).toEqual([
      { queue: 'orders', batchSize: 10, maximumBatchingWindow: 0 },
      {
        queue: 'jobs.fifo',
        batchSize: 5,
        maximumBatchingWindow: 0,
        maximumConcurrency: 3,
        filters: ['{"body":{"kind":["a"]}}'],
      },
    ]);
  });

  const withQueues = (queues: string, fnBody = '') =>
    `service: s\nqueues:\n${queues}\nfunctions:\n  f: { handler: h.f${fnBody ? `, ${fnBody}` : ''} }\n`;
  it.each([
    [withQueues('  q: { fifo: true }'), 'queues.q.fifo: a FIFO queue\'s name must end in ".fifo"'],
    [withQueues('  q.fifo: { fifo: false }'), 'queues.q.fifo.fifo: is false'],
    [withQueues('  q: { contentBasedDeduplication: true }'), 'applies to FIFO queues only'],
    [withQueues('  q: { maxReceiveCount: 3 }'), 'needs a deadLetterQueue'],
    [withQueues('  q: { deadLetterQueue: q }'), 'names the queue itself'],
    [withQueues('  q: { deadLetterQueue: d.fifo }\n  d.fifo: {}'), 'must be standard too'],
    [withQueues('  q: { visibilityTimeout: 50000 }'), 'queues.q.visibilityTimeout: must be at most 43200'],
    [withQueues('  q: { delaySeconds: 901 }'), 'must be at most 900'],
    [withQueues('  "bad name": {}'), 'queue names use 1 to 80 letters'],
    [
      withQueues('  q: {}', 'events: [{ queue: { name: q, batchSize: 0 } }]'),
      'batchSize: must be at least 1',
    ],
    [withQueues('  q: {}', 'events: [{ queue: { name: q, batchSize: 10001 } }]'), 'must be at most 10000'],
    [
      withQueues('  q: {}', 'events: [{ queue: { name: q, batchSize: 11 } }]'),
      'maximumBatchingWindow: must be at least 1 second',
    ],
    [
      withQueues(
        '  q.fifo: {}',
        'events: [{ queue: { name: q.fifo, batchSize: 11, maximumBatchingWindow: 1 } }]',
      ),
      'at most 10 messages',
    ],
    [
      withQueues('  q: { visibilityTimeout: 2 }', 'timeout: 3, events: [{ queue: q }]'),
      "less than the function's timeout (3 s)",
    ],
    [
      withQueues('  q: {}', 'events: [{ queue: { name: q, maximumConcurrency: 1 } }]'),
      'maximumConcurrency: must be at least 2',
    ],
    [
      withQueues(
        '  q: {}',
        'events: [{ queue: { name: q, filterCriteria: { filters: [{ pattern: "[1]" }] } } }]',
      ),
      'filterCriteria.filters.0.pattern',
    ],
    [withQueues('  q: {}', 'events: [{ queue: q }, { queue: q }]'), 'already triggers this function'],
    [
      withQueues('  q: {}', 'async: { onFailure: { queue: q, function: g } }'),
      'must name one function or one queue',
    ],
    [
      withQueues('  q: {}', 'events: [{ table: { name: ttt, onFailure: { queue: gone } } }]'),
      'events.0.table.onFailure.queue: queue "gone" is not declared',
    ],
    [
      withQueues('  q.fifo: {}', 'events: [{ table: { name: ttt, onFailure: { queue: q.fifo } } }]'),
      'must be a standard queue',
    ],
  ])('%j reads "%s"', (yaml, expected) => {
    const message = problem(yaml);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });

  describe('storage events', () => {
    const svc = (events: string, buckets = 'buckets: { uploads: {} }\n') =>
      `service: s\n${buckets}functions:\n  f:\n    handler: a.h\n    events:\n${events}`;

    it('parses the short and the long form, with created as the default and events sorted', () => {
      const m = parseManifest(
        svc(
          '      - storage: uploads\n      - storage: { bucket: uploads, events: [removed, created, removed], prefix: in/, suffix: .jpg }\n',
        ),
      );
      expect(m.functions[0]!.storageTriggers).toEqual([
        { bucket: 'uploads', events: ['created'] },
        { bucket: 'uploads', events: ['created', 'removed'], prefix: 'in/', suffix: '.jpg' },
      ]);
      expect(parseManifest(fn('')).functions[0]!.storageTriggers).toBeUndefined();
    });

    it('refuses a bucket the manifest does not declare, naming the field and the fix', () => {
      expect(problem(svc('      - storage: photos\n'))).toMatch(
        /functions\.f\.events\.0\.storage: bucket "photos" is not declared; add it under buckets:/,
      );
      expect(problem(svc('      - storage: { bucket: photos }\n', ''))).toMatch(
        /functions\.f\.events\.0\.storage\.bucket: bucket "photos" is not declared/,
      );
    });

    it('refuses unknown event kinds, empty filters and the same trigger twice', () => {
      expect(problem(svc('      - storage: { bucket: uploads, events: [changed] }\n'))).toMatch(
        /storage events are "created" or "removed"/,
      );
      expect(problem(svc('      - storage: { bucket: uploads, events: [] }\n'))).toMatch(/events/);
      expect(problem(svc("      - storage: { bucket: uploads, prefix: '' }\n"))).toMatch(/prefix/);
      expect(problem(svc('      - storage: { bucket: uploads, filter: x }\n'))).toMatch(/filter/);
      expect(
        problem(svc('      - storage: uploads\n      - storage: { bucket: uploads, events: [removed] }\n')),
      ).toMatch(/functions\.f\.events\.1\.storage: bucket "uploads" already triggers this function/);
    });
  });
});

describe('http: gateway protection', () => {
  const svc = (http: string, events = '[{ http: { route: GET /me, authorizer: users } }]') =>
    `service: s\nhttp:\n${http}\nfunctions:\n  me: { handler: src/me.get, events: ${events} }\n  auth: { handler: src/auth.check }\n`;
  const jwt = `  authorizers:\n    users: { type: jwt, issuer: "https://issuer.example", audience: [api], jwksUrl: "https://issuer.example/jwks.json" }`;

  it('copies the service settings and the route settings onto each route', () => {
    const m = parseManifest(
      svc(
        `  cors: { allowOrigins: ["https://app.example"], allowHeaders: [Content-Type] }\n  throttle: { rate: 10, burst: 20 }\n${jwt}`,
        '[{ http: { route: GET /me, authorizer: users, authorizationScopes: [read], throttle: { rate: 1, burst: 1 } } }, { http: GET /open }]',
      ),
    );
    const [me, open] = m.functions[0]!.routes;
    expect(me!.protection).toEqual({
      service: 's',
      cors: {
        allowOrigins: ['https://app.example'],
        allowMethods: ['*'],
        allowHeaders: ['content-type'],
        exposeHeaders: [],
        allowCredentials: false,
      },
      serviceThrottle: { rate: 10, burst: 20 },
      throttle: { rate: 1, burst: 1 },
      authorizer: {
        name: 'users',
        type: 'jwt',
        issuer: 'https://issuer.example',
        audience: ['api'],
        jwksUrl: 'https://issuer.example/jwks.json',
        identitySource: '$request.header.Authorization',
      },
      authorizationScopes: ['read'],
    });
    expect(open!.protection?.authorizer).toBeUndefined();
    expect(open!.protection?.serviceThrottle).toEqual({ rate: 10, burst: 20 });
  });

  it('reads a JWT identity source given as a list of one', () => {
    const m = parseManifest(
      svc(jwt.replace('jwksUrl:', 'identitySource: [$request.querystring.token], jwksUrl:')),
    );
    expect(m.functions[0]!.routes[0]!.protection?.authorizer).toMatchObject({
      identitySource: '$request.querystring.token',
    });
  });

  it('leaves routes of a service without http: unprotected', () => {
    expect(
      parseManifest(fn('events: [{ http: GET /a }]')).functions[0]!.routes[0]!.protection,
    ).toBeUndefined();
  });

  it.each([
    [svc('  authorizers: {}'), 'functions.me.events.0.http.authorizer: authorizer "users" is not declared'],
    [
      svc(jwt.replace('"https://issuer.example"', '"issuer.example"')),
      'http.authorizers.users.issuer: "issuer.example" is not an https URL',
    ],
    [
      svc(jwt.replace('"https://issuer.example"', '"http://issuer.example"')),
      'http.authorizers.users.issuer: "http://issuer.example" is not an https URL',
    ],
    [
      svc('  authorizers:\n    users: { type: lambda, function: nope }'),
      'http.authorizers.users.function: function "nope" is not declared in this service',
    ],
    [
      svc('  cors: { allowOrigins: ["*"], allowCredentials: true }', '[]'),
      'http.cors.allowCredentials: cannot be true when allowOrigins contains "*"',
    ],
    [svc('  cors: { allowOrigins: ["https://app.example/path"] }', '[]'), 'http.cors.allowOrigins.0'],
    [
      svc(
        '  authorizers:\n    users: { type: lambda, function: auth }',
        '[{ http: { route: GET /me, authorizer: users, authorizationScopes: [a] } }]',
      ),
      'authorizationScopes: apply to routes with a jwt authorizer only',
    ],
    [
      svc('  authorizers:\n    users: { type: lambda, function: auth, identitySource: [Authorization] }'),
      'an identity source is $request.header.<Name>',
    ],
    [svc('  throttle: { rate: 1, burst: -1 }', '[]'), 'http.throttle.burst: must be at least 0'],
  ])('refuses %#', (yaml, expected) => {
    expect(problem(yaml)).toContain(expected);
  });
});

describe('http: usage plans and API keys', () => {
  const svc = (plans: string, events = '[{ http: { route: GET /me, apiKeyRequired: true } }]') =>
    `service: s\nhttp:\n  usagePlans:\n${plans}\nfunctions:\n  me: { handler: src/me.get, events: ${events} }\n`;

  it("puts the service's plans on its routes and marks the routes that need a key", () => {
    const m = parseManifest(
      svc(
        '    free: { throttle: { rate: 10, burst: 20 }, quota: { limit: 1000, period: DAY } }\n    open: {}',
        '[{ http: { route: GET /me, apiKeyRequired: true } }, { http: GET /public }]',
      ),
    );
    const [me, pub] = m.functions[0]!.routes;
    expect(me!.protection).toEqual({
      service: 's',
      apiKeyRequired: true,
      usagePlans: {
        free: { throttle: { rate: 10, burst: 20 }, quota: { limit: 1000, period: 'DAY' } },
        open: {},
      },
    });
    expect(pub!.protection?.apiKeyRequired).toBeUndefined();
    expect(pub!.protection?.usagePlans).toBeDefined();
  });

  it.each([
    [svc('    free: { quota: { limit: 10, period: YEAR } }'), 'http.usagePlans.free.quota.period'],
    [svc('    free: { quota: { limit: -1, period: DAY } }'), 'http.usagePlans.free.quota.limit'],
    [svc('    free: { quota: { limit: 1.5, period: DAY } }'), 'http.usagePlans.free.quota.limit'],
    [svc('    free: { quota: { period: DAY } }'), 'http.usagePlans.free.quota.limit'],
    [svc('    free: { throttle: { rate: 1 } }'), 'http.usagePlans.free.throttle.burst'],
    [svc('    free: { limit: 10 }'), 'http.usagePlans.free'],
    [svc('    "1free": {}'), 'usage plan names start with a letter'],
    [
      `service: s\nfunctions:\n  me: { handler: src/me.get, events: [{ http: { route: GET /me, apiKeyRequired: true } }] }\n`,
      'functions.me.events.0.http.apiKeyRequired: needs a usage plan',
    ],
    [
      svc('    free: {}', '[{ http: { route: GET /me, apiKeyRequired: yes } }]'),
      'functions.me.events.0.http',
    ],
  ])('refuses %#', (yaml, expected) => {
    expect(problem(yaml)).toContain(expected);
  });
});

describe('secret references in environment', () => {
  const yaml = (value: string): string =>
    `service: s\nfunctions:\n  f:\n    handler: h.handler\n    environment:\n      DB_PASSWORD: ${value}\n`;

  it('keeps an exact ${secret:NAME} as the reference text', () => {
    const m = parseManifest(yaml('${secret:app/db.password-1_x}'));
    expect(m.functions[0]!.environment).toEqual({ DB_PASSWORD: '${secret:app/db.password-1_x}' });
  });

  it('refuses a reference that is not the whole value, or names an invalid secret, naming the field', () => {
    for (const [value, problem] of [
      ['pre-${secret:db}', /must be the whole value/],
      ['"${secret:db}-post"', /must be the whole value/],
      ['"${secret:a}${secret:b}"', /must be the whole value/],
      ['"${secret:has space}"', /secret name "has space" is not valid/],
      ['"${secret:}"', /secret name "" is not valid/],
      ['"${secret:db"', /must be the whole value/],
    ] as const) {
      let err: unknown;
      try {
        parseManifest(yaml(value));
      } catch (e) {
        err = e;
      }
      expect(err, value).toBeInstanceOf(ManifestError);
      expect((err as ManifestError).field).toBe('functions.f.environment.DB_PASSWORD');
      expect((err as ManifestError).message).toMatch(problem);
    }
  });

  it('leaves other values with dollars and braces alone', () => {
    expect(parseManifest(yaml('"${HOME} and $secret:x"')).functions[0]!.environment).toEqual({
      DB_PASSWORD: '${HOME} and $secret:x',
    });
  });
});
