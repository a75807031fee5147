// `npm run bench`: every benchmark in one run, each printing its figures and saving them to bench/results/.
import { runCore } from './core.mjs';
import { saveResult } from './lib.mjs';

const core = await runCore();
console.log(`saved ${saveResult('core', core)}`);
