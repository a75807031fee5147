// Turning an uploaded service archive into deployed function versions. Used by the control API and by
// `nimbus up` for the bundled examples, so both paths validate the same way.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestError, parseManifest, type Manifest } from '../config/manifest.js';
import type { CodeCache } from '../invoker/code-cache.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { StemCellPool } from '../sandbox/pool.js';
import type { DeployResult, FunctionStore } from '../store/types.js';

export interface DeployResponse {
  service: string;
  functions: { name: string; version: number; changed: boolean; routes: string[] }[];
  removed: string[];
}

export class Deployer {
  constructor(
    private readonly o: {
      functions: FunctionStore;
      code: CodeCache;
      registry: FunctionRegistry;
      pool: StemCellPool;
      /** Checks the new routes against every other service's (the route table lives in the gateway). */
      checkRoutes?: (manifest: Manifest, project: string) => string | null;
      /** Resolves once the trigger sources have taken in the new functions (their schedules stored), so
       *  what the deploy answers is what `nimbus ls` shows next. */
      triggersSynced?: () => Promise<void>;
    },
  ) {}

  async deploy(archive: Buffer, project: string): Promise<DeployResponse> {
    const sha256 = createHash('sha256').update(archive).digest('hex');
    const dir = await this.o.code.put(sha256, archive);
    const manifestPath = join(dir, 'nimbus.yaml');
    if (!existsSync(manifestPath)) {
      throw new ManifestError(
        'nimbus.yaml',
        '',
        'is missing from the uploaded archive; deploy a folder that has one',
      );
    }
    const manifest = parseManifest(readFileSync(manifestPath, 'utf8'), 'nimbus.yaml');
    checkHandlers(manifest, dir);
    checkDestinations(manifest, project, this.o.registry);
    const conflict = this.o.checkRoutes?.(manifest, project);
    if (conflict) throw new ManifestError('nimbus.yaml', 'events', conflict);
    const result: DeployResult = await this.o.functions.deploy({
      project,
      service: manifest.service,
      functions: manifest.functions,
      code: { sha256, archive },
    });
    for (const f of manifest.functions) this.o.pool.ensure(f.memory);
    await this.o.registry.load();
    await this.o.triggersSynced?.();
    return {
      service: manifest.service,
      functions: result.functions.map((f) => ({
        ...f,
        routes: (manifest.functions.find((m) => m.name === f.name)?.routes ?? []).map(
          (r) => `${r.method} ${r.path}`,
        ),
      })),
      removed: result.removed,
    };
  }
}

/** A handler whose module file is absent fails every invocation; say so at deploy time instead. */
function checkHandlers(manifest: Manifest, dir: string): void {
  for (const f of manifest.functions) {
    const lastSlash = f.handler.lastIndexOf('/');
    const dot = f.handler.indexOf('.', lastSlash + 1);
    const modulePath = f.handler.slice(0, dot);
    const candidates = ['', '.js', '.mjs', '.cjs'].map((ext) => join(dir, modulePath + ext));
    if (!candidates.some((p) => existsSync(p) && statSync(p).isFile())) {
      throw new ManifestError(
        'nimbus.yaml',
        `functions.${f.name}.handler`,
        `module "${modulePath}" was not found in the uploaded service (looked for ${modulePath}.js, .mjs and .cjs); check the path, or deploy with \`nimbus deploy\`, which bundles .ts files`,
      );
    }
  }
}

/** A destination must be a function that exists once this deploy is done: declared here, or deployed by
 *  another service of the project (this service's undeclared functions are about to be removed). */
function checkDestinations(manifest: Manifest, project: string, registry: FunctionRegistry): void {
  const declared = new Set(manifest.functions.map((f) => f.name));
  for (const f of manifest.functions) {
    for (const key of ['onSuccess', 'onFailure'] as const) {
      const target = f.async?.[key]?.function;
      if (target === undefined || declared.has(target)) continue;
      const other = registry.get({ project, name: target });
      if (other && other.service !== manifest.service) continue;
      throw new ManifestError(
        'nimbus.yaml',
        `functions.${f.name}.async.${key}.function`,
        `names "${target}", which is not a function of this service or of another deployed service; declare it or deploy it first`,
      );
    }
  }
}
