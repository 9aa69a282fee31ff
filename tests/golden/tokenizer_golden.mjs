// Regenerates the tokenizer golden files with the Hugging Face `tokenizers`
// library (its Node binding: the same Rust crate as the Python package).
//
//   cd tests/golden && npm ci && node tokenizer_golden.mjs [--out DIR]
//
// For every style in tokenizer_golden_spec.json it trains a small BPE on the
// embedded corpus (tokenizers' own trainer), keeps the first `num_merges` merges
// (what BpeTrainer with a smaller vocab_size would keep), writes
// DIR/<style>/tokenizer.json and records, for every test string, the ids with
// and without special tokens and the decodes in DIR/expected.json.
// tokenizer_golden.py does the same with the Python package (GPU machine).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import tk from 'tokenizers';

const { Tokenizer } = tk;
const here = path.dirname(fileURLToPath(import.meta.url));
let outDir = path.join(here, 'tokenizers');
for (let i = 2; i < process.argv.length; ++i) {
  if (process.argv[i] === '--out') outDir = process.argv[++i];
  else throw new Error(`unknown argument ${process.argv[i]}`);
}
const spec = JSON.parse(fs.readFileSync(path.join(here, 'tokenizer_golden_spec.json'), 'utf8'));
const version = createRequire(import.meta.url)('tokenizers/package.json').version;

// GPT-2's reversible byte <-> printable character table.
function byteLevelAlphabet() {
  const bs = [];
  for (let b = 33; b <= 126; ++b) bs.push(b);
  for (let b = 161; b <= 172; ++b) bs.push(b);
  for (let b = 174; b <= 255; ++b) bs.push(b);
  const chars = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; ++b) chars[b] = bs.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
  return chars;
}

function emptyTokenizer(style, normalizer, preTokenizer) {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [],
    normalizer, pre_tokenizer: preTokenizer, post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
             end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
             vocab: {}, merges: [] },
  };
}

function buildStyle(style, corpusFile) {
  const trainNorm = 'train_normalizer' in style ? style.train_normalizer : style.normalizer;
  const trainPre = 'train_pre_tokenizer' in style ? style.train_pre_tokenizer : style.pre_tokenizer;
  const trainer = Tokenizer.fromString(JSON.stringify(emptyTokenizer(style, trainNorm, trainPre)));
  trainer.train([corpusFile]);
  const tmp = path.join(os.tmpdir(), `hilum-golden-${process.pid}-${style.name}.json`);
  trainer.save(tmp, false);
  const trained = JSON.parse(fs.readFileSync(tmp, 'utf8')).model;
  fs.unlinkSync(tmp);
  const merges = trained.merges.map((m) => (Array.isArray(m) ? m : m.split(' ')));
  const products = new Set(merges.map(([a, b]) => a + b));
  const alphabet = Object.entries(trained.vocab).filter(([t]) => !products.has(t))
    .sort((x, y) => x[1] - y[1]).map(([t]) => t);

  const vocab = {};
  const add = (t) => { if (!(t in vocab)) vocab[t] = Object.keys(vocab).length; };
  (style.specials_in_vocab || []).forEach(add);
  if (style.byte_fallback) for (let b = 0; b < 256; ++b) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  (style.byte_level ? byteLevelAlphabet() : alphabet).forEach(add);
  const kept = merges.slice(0, Math.min(style.num_merges, merges.length));
  for (const [a, b] of kept) add(a + b);
  (style.extra_vocab || []).forEach(add);

  let nextId = Object.keys(vocab).length;
  const added = style.added_tokens.map((t) => ({ id: t.content in vocab ? vocab[t.content] : nextId++, ...t }));
  // The spec leaves the ids of template special tokens to be filled in here.
  const idOf = (t) => { const a = added.find((x) => x.content === t); return a ? a.id : vocab[t]; };
  const postProcessor = JSON.parse(JSON.stringify(style.post_processor));
  const fillIds = (p) => {
    if (!p) return;
    if (p.type === 'TemplateProcessing') {
      for (const st of Object.values(p.special_tokens)) st.ids = st.tokens.map(idOf);
    }
    (p.processors || []).forEach(fillIds);
  };
  fillIds(postProcessor);
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: style.normalizer, pre_tokenizer: style.pre_tokenizer,
    post_processor: postProcessor, decoder: style.decoder,
    model: { type: 'BPE', dropout: null, unk_token: style.model.unk_token, continuing_subword_prefix: null,
             end_of_word_suffix: null, fuse_unk: style.model.fuse_unk, byte_fallback: style.model.byte_fallback,
             ignore_merges: style.model.ignore_merges, vocab,
             merges: style.merges_format === 'strings' ? kept.map(([a, b]) => `${a} ${b}`) : kept },
  };
}

function fnv1a(ids) {
  let h = 0x811c9dc5;
  for (const id of ids) {
    for (let k = 0; k < 4; ++k) {
      h ^= (id >>> (8 * k)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h >>> 0;
}

const corpusFile = path.join(os.tmpdir(), `hilum-golden-corpus-${process.pid}.txt`);
fs.writeFileSync(corpusFile, spec.corpus.join('\n') + '\n');
const expected = { generator: `tokenizers ${version} (npm binding of the Rust crate)`, styles: {} };
for (const style of spec.styles) {
  const json = buildStyle(style, corpusFile);
  const text = JSON.stringify(json, null, 1) + '\n';
  const tok = Tokenizer.fromString(text);
  fs.mkdirSync(path.join(outDir, style.name), { recursive: true });
  fs.writeFileSync(path.join(outDir, style.name, 'tokenizer.json'), text);

  const cases = [];
  for (const s of spec.cases) {
    const withSpecial = await tok.encode(s, null, { addSpecialTokens: true });
    const plain = await tok.encode(s, null, { addSpecialTokens: false });
    const ids = withSpecial.getIds();
    cases.push({ text: s, ids, ids_no_special: plain.getIds(),
                 decode: await tok.decode(ids, false), decode_skip_special: await tok.decode(ids, true) });
  }
  const decodeCases = [];
  for (const tokens of style.decode_tokens || []) {
    const ids = tokens.map((t) => {
      const id = tok.tokenToId(t);
      if (id === null || id === undefined) throw new Error(`${style.name}: decode token ${t} not in vocab`);
      return id;
    });
    decodeCases.push({ tokens, ids, decode: await tok.decode(ids, false), decode_skip_special: await tok.decode(ids, true) });
  }
  // A long text: compared through its length and a hash of the ids (FNV-1a over
  // the ids as unsigned 32-bit little-endian values), to keep the file small.
  const longIds = (await tok.encode(spec.long_text, null, { addSpecialTokens: true })).getIds();
  expected.styles[style.name] = { vocab_size: tok.getVocabSize(true), cases, decode_cases: decodeCases,
                                  long_text: { count: longIds.length, fnv1a: fnv1a(longIds),
                                               decode_equal: (await tok.decode(longIds, true)) === spec.long_text } };
  console.log(`${style.name}: ${Object.keys(json.model.vocab).length} vocab, ${json.model.merges.length} merges, ${cases.length} cases`);
}
fs.unlinkSync(corpusFile);
// One case per line keeps the file compact and its diffs readable.
const lines = [`{"generator": ${JSON.stringify(expected.generator)}, "styles": {`];
Object.entries(expected.styles).forEach(([name, st], k) => {
  lines.push(` ${JSON.stringify(name)}: {"vocab_size": ${st.vocab_size}, "long_text": ${JSON.stringify(st.long_text)},`);
  lines.push('  "decode_cases": [');
  lines.push(st.decode_cases.map((c) => '   ' + JSON.stringify(c)).join(',\n'));
  lines.push('  ],');
  lines.push('  "cases": [');
  lines.push(st.cases.map((c) => '   ' + JSON.stringify(c)).join(',\n'));
  lines.push(`  ]}${k + 1 < Object.keys(expected.styles).length ? ',' : ''}`);
});
lines.push('}}');
fs.writeFileSync(path.join(outDir, 'expected.json'), lines.join('\n') + '\n');
console.log(`wrote ${outDir}/expected.json`);
