// Variables in nimbus.yaml: what each kind resolves to, the type a whole-value variable keeps, and the one
// line (naming the field it is written in) each mistake produces.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManifestError, manifestFromValue, parseManifestYaml } from './manifest.js';
import { applyStage, stageService } from './stages.js';
import { stageNameProblem } from './stage-name.js';
import { resolveVariables, type VariableContext } from './variables.js';

const outside = mkdtempSync(join(tmpdir(), 'nimbus-vars-outside-'));
writeFileSync(join(outside, 'secret.json'), '{"k": 1}');
const dir = mkdtempSync(join(tmpdir(), 'nimbus-vars-'));
writeFileSync(join(dir, 'config.json'), JSON.stringify({ table: 'items', limits: { max: 50 }, on: true }));
mkdirSync(join(dir, 'conf'));
writeFileSync(join(dir, 'conf', 'app.yaml'), 'region: eu\nsizes: [1, 2]\n');
writeFileSync(join(dir, 'broken.json'), '{ nope');
symlinkSync(join(outside, 'secret.json'), join(dir, 'link.json'));

const ctx = (over: Partial<VariableContext> = {}): VariableContext => ({
  env: { TABLE_NAME: 'orders', MEM: '256' },
  stage: 'default',
  dir,
  file: 'nimbus.yaml',
  ...over,
});
const resolve = (yaml: string, over: Partial<VariableContext> = {}): unknown =>
  resolveVariables(parseManifestYaml(yaml), ctx(over));
const problem = (yaml: string, over: Partial<VariableContext> = {}): string => {
  try {
    resolve(yaml, over);
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as Error).message;
  }
  throw new Error('expected a ManifestError');
};

describe('resolveVariables', () => {
  it('reads the environment, with and without a default', () => {
    expect(
      resolve('a: ${env:TABLE_NAME}\nb: ${env:UNSET, items}\nc: ${env:TABLE_NAME, x}\nd: ${env:UNSET,}'),
    ).toEqual({
      a: 'orders',
      b: 'items',
      c: 'orders',
      d: '',
    });
  });

  it('refuses an unset variable without a default, naming the field it is written in', () => {
    expect(problem('functions:\n  api:\n    environment:\n      TABLE: ${env:TABLE_NAME}', { env: {} })).toBe(
      'nimbus.yaml: functions.api.environment.TABLE: ${env:TABLE_NAME} is not set; set it or give a default: ${env:TABLE_NAME, value}',
    );
  });

  it('keeps the type of a whole-value variable and stringifies an embedded one', () => {
    const r = resolve(
      'custom: { mem: 256, on: true, obj: { x: 1 } }\nm: ${self:custom.mem}\nb: ${self:custom.on}\no: ${self:custom.obj}\ns: "mem=${self:custom.mem} on=${self:custom.on}"',
    );
    expect(r).toMatchObject({ m: 256, b: true, o: { x: 1 }, s: 'mem=256 on=true' });
  });

  it('refuses a mapping inside a string', () => {
    expect(problem('custom: { obj: { x: 1 } }\ns: "a-${self:custom.obj}"')).toMatch(
      /^nimbus\.yaml: s: \$\{self:custom\.obj\} is a mapping and cannot be part of a string; make it the whole value$/,
    );
  });

  it('follows ${self:...} through other variables and lists', () => {
    const r = resolve(
      'service: todo\ncustom: { table: "${self:service}-items", list: [a, "${env:TABLE_NAME}"] }\nt: ${self:custom.table}\nl: ${self:custom.list.1}\nf: ${self:cfg.limits.max}\ncfg: ${file(./config.json)}',
    );
    expect(r).toMatchObject({ t: 'todo-items', l: 'orders', f: 50 });
  });

  it('resolves nested variables: a default that is itself a variable, a path built from one', () => {
    const r = resolve(
      'custom: { default: items, byStage: { default: small, prod: big } }\na: ${env:UNSET, ${self:custom.default}}\nb: ${self:custom.byStage.${stage}}',
    );
    expect(r).toMatchObject({ a: 'items', b: 'small' });
    expect(
      resolve('custom: { byStage: { prod: big } }\nb: ${self:custom.byStage.${stage}}', { stage: 'prod' }),
    ).toMatchObject({
      b: 'big',
    });
  });

  it('refuses a ${self:...} to nothing and a cycle, naming the field', () => {
    expect(problem('a: { b: "${self:custom.nope}" }')).toBe(
      'nimbus.yaml: a.b: ${self:custom.nope}: nothing at custom in the manifest',
    );
    expect(problem('a: ${self:b}\nb: ${self:c}\nc: ${self:a}')).toBe(
      'nimbus.yaml: c: ${self:...} references form a cycle: a → b → c → a',
    );
    expect(problem('a: { x: 1, y: "${self:a}" }')).toMatch(
      /^nimbus\.yaml: a\.y: \$\{self:\.\.\.\} references form a cycle: a → a\.y → a$/,
    );
  });

  it('resolves ${stage}', () => {
    expect(resolve('a: ${stage}\nb: "t-${stage}"', { stage: 'prod' })).toEqual({ a: 'prod', b: 't-prod' });
    expect(resolve('a: ${stage}')).toEqual({ a: 'default' });
  });

  it('reads JSON and YAML files in the service folder, whole or by key', () => {
    const r = resolve(
      'a: ${file(./config.json):table}\nb: ${file(./config.json):limits}\nc: ${file(conf/app.yaml):sizes.1}\nd: ${file(./conf/app.yaml)}\ne: ${file(./config.json):on}',
    );
    expect(r).toEqual({ a: 'items', b: { max: 50 }, c: 2, d: { region: 'eu', sizes: [1, 2] }, e: true });
  });

  it('refuses a file that is missing, outside the folder, not JSON or YAML, or has no such key', () => {
    expect(problem('x: { y: "${file(./nope.json):a}" }')).toBe(
      'nimbus.yaml: x.y: ${file(./nope.json):a}: file ./nope.json not found in the service folder',
    );
    expect(problem(`x: \${file(${join(outside, 'secret.json')})}`)).toMatch(
      /^nimbus\.yaml: x: \$\{file\(.*secret\.json\)\}: .*secret\.json is outside the service folder; move the file into it$/,
    );
    expect(problem('x: ${file(../x.json)}')).toBe(
      'nimbus.yaml: x: ${file(../x.json)}: ../x.json is outside the service folder; move the file into it',
    );
    expect(problem('x: ${file(./link.json):k}')).toBe(
      'nimbus.yaml: x: ${file(./link.json):k}: ./link.json is outside the service folder; move the file into it',
    );
    expect(problem('x: ${file(./broken.json)}')).toMatch(
      /^nimbus\.yaml: x: \$\{file\(\.\/broken\.json\)\}: \.\/broken\.json is not valid JSON or YAML: /,
    );
    expect(problem('x: ${file(./config.json):nope.deeper}')).toBe(
      'nimbus.yaml: x: ${file(./config.json):nope.deeper}: ./config.json has no nope.deeper',
    );
  });

  it('leaves ${secret:NAME} for the host', () => {
    expect(resolve('a: ${secret:db-password}')).toEqual({ a: '${secret:db-password}' });
  });

  it('refuses an unknown kind and an unclosed variable, naming the field', () => {
    expect(problem('functions:\n  f:\n    environment: { X: "${foo:bar}" }')).toMatch(
      /^nimbus\.yaml: functions\.f\.environment\.X: \$\{foo:bar\}: unknown variable "foo"; use \$\{env:NAME\}/,
    );
    expect(problem('a: "${HOME}"')).toMatch(/^nimbus\.yaml: a: \$\{HOME\}: unknown variable "HOME"/);
    expect(problem('a: "x ${env:A"')).toMatch(
      /^nimbus\.yaml: a: "x \$\{env:A" has a "\$\{" with no closing "\}"/,
    );
  });

  it('writes $${ as a literal ${', () => {
    expect(resolve('a: "$${env:HOME} and $${HOME}"')).toEqual({ a: '${env:HOME} and ${HOME}' });
  });

  it('leaves a manifest without variables as it is', () => {
    const raw = parseManifestYaml('service: s\nfunctions: { f: { handler: a.b, memory: 128 } }');
    expect(resolveVariables(raw, ctx())).toEqual(raw);
  });

  it('reports schema errors against the resolved value', () => {
    const raw = resolveVariables(
      parseManifestYaml('service: s\nfunctions: { f: { handler: a.b, memory: "${env:MEM}" } }'),
      ctx(),
    );
    expect(() => manifestFromValue(raw)).toThrow(/^nimbus\.yaml: functions\.f\.memory: /);
  });
});

describe('stages', () => {
  it('refuses bad stage names', () => {
    expect(stageNameProblem('prod')).toBeUndefined();
    expect(stageNameProblem('pr-2')).toBeUndefined();
    expect(stageNameProblem('Prod')).toMatch(
      /^--stage "Prod" is not a stage name: use 1 to 32 lower-case letters/,
    );
    expect(stageNameProblem('a_b')).toBeDefined();
    expect(stageNameProblem('2x')).toBeDefined();
    expect(stageNameProblem('')).toBeDefined();
  });

  it('renames what the service declares and the references to it, and prefixes routes', () => {
    const yaml = `service: todo
tables: { items: { key: { id: S } } }
queues: { jobs: { deadLetterQueue: dead }, dead: null, orders.fifo: null }
buckets: { uploads: {} }
http: { authorizers: { auth: { type: lambda, function: authz } } }
functions:
  api:
    handler: a.b
    environment: { TABLE: items, OTHER: elsewhere, SVC: "\${self:service}" }
    permissions: { tables: [items, external], queues: [jobs] }
    events:
      - http: GET /items
      - http: { route: "POST /", authorizer: auth }
  authz: { handler: a.c }
  worker:
    handler: a.d
    async: { onFailure: { queue: dead } , onSuccess: { function: api } }
    events:
      - queue: jobs
      - queue: { name: orders.fifo }
      - storage: uploads
`;
    const resolved = resolveVariables(
      stageService(parseManifestYaml(yaml), 'prod', 'nimbus.yaml'),
      ctx({ stage: 'prod' }),
    );
    const m = manifestFromValue(applyStage(resolved, 'prod', 'nimbus.yaml'));
    expect(m.service).toBe('todo-prod');
    expect(m.functions.map((f) => f.name).sort()).toEqual(['api-prod', 'authz-prod', 'worker-prod']);
    expect(m.tables.map((t) => t.name)).toEqual(['items-prod']);
    expect(m.queues.map((q) => q.name).sort()).toEqual(['dead-prod', 'jobs-prod', 'orders-prod.fifo']);
    expect(m.buckets).toEqual(['uploads-prod']);
    const api = m.functions.find((f) => f.name === 'api-prod')!;
    expect(api.environment).toEqual({ TABLE: 'items-prod', OTHER: 'elsewhere', SVC: 'todo-prod' });
    expect(api.routes.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /prod/items', 'POST /prod']);
    expect(JSON.stringify(api)).toContain('authz-prod');
    expect(api.permissions).toMatchObject({ tables: ['external', 'items-prod'], queues: ['jobs-prod'] });
    const worker = m.functions.find((f) => f.name === 'worker-prod')!;
    expect(JSON.stringify(worker)).toContain('"dead-prod"');
    expect(JSON.stringify(worker)).toContain('"api-prod"');
    expect(JSON.stringify(worker)).toContain('"orders-prod.fifo"');
    expect(JSON.stringify(worker)).toContain('"uploads-prod"');
    expect(m.queues.find((q) => q.name === 'jobs-prod')?.deadLetterQueue).toBe('dead-prod');
  });
});
