// Transpiles a WASI component to an ES module with jco: `node transpile.mjs COMPONENT OUTDIR`.
// The output imports WASI from @bytecodealliance/preview2-shim, so OUTDIR must lie below this
// folder (Node resolves the shim from node_modules here).
import { transpile, writeFiles } from '@bytecodealliance/jco-transpile';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const [input, outDir] = process.argv.slice(2);
if (!input || !outDir) {
  console.error('usage: node transpile.mjs COMPONENT.wasm OUTDIR');
  process.exit(2);
}
const { files, imports } = await transpile(input, { outDir, name: 's3lect-cron' });
await writeFiles(files);
await writeFile(join(outDir, 'package.json'), '{"type":"module"}\n');
console.log(`transpiled ${input} -> ${outDir} (imports: ${imports.join(', ')})`);
