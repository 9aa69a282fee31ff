// The Hugging Face tokenizers library (npm binding of the Rust crate) on the
// text and tokenizer files of bench_tokenizer.cpp; prints JSON timings.
//   (cd tests/golden && npm ci) && node bench/bench_tokenizer_hf.mjs
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const golden = path.join(root, 'tests', 'golden');
const require = createRequire(path.join(golden, 'package.json'));
const { Tokenizer } = require('tokenizers');
const version = require('tokenizers/package.json').version;

const corpus = JSON.parse(fs.readFileSync(path.join(golden, 'tokenizer_golden_spec.json'), 'utf8')).long_text;
let text = '';
for (let k = 0; k < 200; ++k) text += `Section ${k}:\n${corpus}\n`;

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = { library: `tokenizers ${version} (npm)`, bytes: Buffer.byteLength(text), styles: {} };
for (const style of ['olmoe', 'llama3', 'qwen2', 'deepseek_v3', 'mixtral']) {
  const tok = Tokenizer.fromFile(path.join(golden, 'tokenizers', style, 'tokenizer.json'));
  let ids = null;
  const times = [];
  for (let r = 0; r < 7; ++r) {
    const t0 = process.hrtime.bigint();
    ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  out.styles[style] = { encode_ms: median(times.slice(1)), tokens: ids.length };
}
console.log(JSON.stringify(out));
