// gen.js writes the expected encodings that tokenize's fixture tests
// compare against. The ids come from the official Hugging Face tokenizers
// library (npm package "tokenizers", Node bindings of the Rust crate).
//
//   cd tokenize/testdata/hf && npm ci && node gen.js [shared-dir]
//
// shared-dir defaults to ../../../../shared (the folder next to the repo).
// It writes ../pairs.jsonl.gz (the inputs) and ../expected-<tok>.jsonl.gz
// (one line per pair and configuration).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const os = require('os');
const { Tokenizer } = require('tokenizers');

const shared = path.resolve(process.argv[2] || path.join(__dirname, '../../../../shared'));
// FIXTURE_OUT, FIXTURE_RANDOM, FIXTURE_SEED and FIXTURE_REAL_CANDS make
// larger throwaway fixtures for stress runs (the Go test reads
// RERANK_TOKENIZE_FIXTURES).
const out = path.resolve(process.env.FIXTURE_OUT || path.join(__dirname, '..'));
const nRandom = Number(process.env.FIXTURE_RANDOM || 150);
const seed = Number(process.env.FIXTURE_SEED || 42);

// ---------- pairs ----------

function readJSONL(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

function passageText(doc) {
  return ((doc.title || '') + ' ' + (doc.text || '')).trim();
}

// Real pairs: dev queries with their BM25 candidates.
function realPairs(collection, nQueries, nCands) {
  const dir = path.join(shared, 'data', collection);
  const corpus = new Map();
  for (const d of readJSONL(path.join(dir, 'corpus.jsonl'))) corpus.set(d._id, d);
  const runs = readJSONL(path.join(dir, 'bm25', 'dev.top100.jsonl'));
  const pairs = [];
  for (const r of runs.slice(0, nQueries)) {
    for (const id of r.doc_ids.slice(0, nCands)) {
      const d = corpus.get(id);
      if (!d) continue;
      pairs.push({ cat: 'data/' + collection, query: r.query, passage: passageText(d) });
    }
  }
  return pairs;
}

// Deterministic PRNG (mulberry32) so the fixtures are reproducible.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const adversarial = {
  accented: [
    'Café crème, naïve façade, résumé; Ångström über Straße',
    'Œuvre complète de Molière à l’Hôtel-Dieu',
    'İstanbul ve IĞDIR şehirleri; ıi İi',
    'combining: cafe\u0301 nai\u0308ve e\u0301\u0301 a\u030a o\u0308\u0304',
    'Español: ñandú, pingüino, corazón; Português: ação, pão',
    'Čeština: příliš žluťoučký kůň úpěl ďábelské ódy',
    'Ελληνικά: ΟΔΥΣΣΕΥΣ, Σίσυφος, άέήίόύώ ΐ ΰ',
    'Tiếng Việt: Việt Nam, người, đường, thuở',
    'ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞß àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ',
    'ǅungla ǈudevit ǋenad, ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ',
  ],
  cjk: [
    '自然语言处理是人工智能的一个分支。',
    '東京都の天気は晴れです。カタカナとひらがな、漢字',
    '한국어 자연어 처리는 재미있습니다. 한글 ㄱㄴㄷ',
    '中文English混合text测试123',
    '𠀀𠀁𪜀 extension B ideographs 𫝀 𫠠 𬺰 and compat 丽 丸',
    '「引用」『二重』【括弧】〈山〉《書名》、。・',
    'ｶﾀｶﾅ ﾊﾝｶｸ ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟﾌﾟ half-width katakana',
  ],
  scripts: [
    'हिन्दी भाषा में क्षत्रिय और ज्ञान, श्री, द्ध्र्य',
    'ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ น้ำ ผู้ใหญ่',
    'اللغة العربية: مَرْحَبًا بِكُمْ، كيف حالك؟ ١٢٣',
    'Русский язык: Съешь же ещё этих мягких французских булок, да выпей чаю. Ёё Йй',
    'עברית: שָׁלוֹם עוֹלָם',
    'বাংলা ভাষা, ਪੰਜਾਬੀ, ગુજરાતી, ଓଡ଼ିଆ, தமிழ், తెలుగు, ಕನ್ನಡ, മലയാളം',
    'ქართული ენა, Հայերեն, አማርኛ, ᠮᠣᠩᠭᠣᠯ, ᏣᎳᎩ, ⵜⴰⵎⴰⵣⵉⵖⵜ',
    'Ελληνικά και Русский и العربية mixed RTL \u200Fmark\u200E LTR',
  ],
  whitespace_control: [
    'non\u00A0breaking\u00A0space and\u3000ideographic\u3000space',
    'line\u2028separator and paragraph\u2029separator',
    'windows\r\nline\r\nendings and\rcarriage and\nnewline',
    'tabs\tand\vvertical\ffeed \u0085next line',
    'zero\u200Bwidth\u200Cnon\u200Djoiner \uFEFFbom soft\u00ADhyphen',
    'nul\u0000byte unit\u001Fsep del\u007F c1\u0080\u009F',
    'replacement \uFFFD char and private \uE000\uF8FF \u{F0000}',
    'en\u2002em\u2003thin\u2009hair\u200Anarrow\u202Fmath\u205Fogham\u1680',
    '   leading and trailing spaces   ',
    'many      spaces     inside    text',
    '\t\n\r ',
    'mongolian\u180Evowel sep, word\u2060joiner, bidi\u202Aembed\u202C',
    'a\r\n\r\nb \r\u0301 c\n\u0308',
  ],
  nfkc_emoji: [
    'fullwidth ＡＢＣ ａｂｃ １２３ ！？',
    'circled ① ② ⑩ superscript x² y³ H₂O',
    'units ㎏ ㎞ ㍻ ℃ ℉ № ™ ℌ ℍ Ⅻ ⅻ ½ ¼',
    'emoji 👍 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇩🇪 1️⃣ ❤️ 🥰 🫠 🧑🏿‍🚀',
    'math 𝐀𝐁𝐂 𝒜 𝔄 𝕬 𝟏𝟐𝟑 ∮ ∑ √',
    'ligatures ﬁnance ﬂow Ĳsselmeer ǉ',
    'Hangul compat ㄱㅏ ㈀ ㉠ and enclosed 🄰 🅐',
    'arabic presentation ﻻ ﷺ ﷽',
  ],
  punct_url: [
    'Visit https://example.com/path/to/page?query=value&other=1#fragment now!',
    'email me at first.last+tag@sub.example.co.uk, or call +1 (555) 123-4567.',
    '"Quotes" ‘single’ “double” «guillemets» —em dash– en dash … ellipsis',
    'code: if (a[i] >= b->c && !d) { return x ^ y | z; } // comment',
    'C++ C# F# .NET node.js e.g. i.e. U.S.A. 3.14159 1,000,000 50% $100 €20 £5 ¥1000',
    '¿¡Hola!? ¡¡¡ ??? !!! ... --- ___ *** ### @@@ ~~~ ```',
    'path C:\\Users\\name\\file.txt and /usr/local/bin/rerank --flag=value',
    '<html><body class="x">Tags &amp; entities &lt;b&gt;</body></html>',
  ],
  long_words: [
    'a'.repeat(99) + ' ' + 'b'.repeat(100) + ' ' + 'c'.repeat(101),
    'pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious',
    'methionylthreonylthreonylglutaminylarginyltyrosylglutamylserylleucylphenylalanylalanylglutaminylleucyllysylglutamylarginyllysylglutamylglycylalanylphenylalanylvalylprolylphenylalanylvalylthreonylleucylglycylaspartylprolylglycylisoleucylglutamylglutaminylserylleucyllysylisoleucylaspartylthreonylleucylisoleucylglutamylalanylglycylalanylaspartylalanylleucylglutamylleucylglycylisoleucylprolylphenylalanylserylaspartylprolylleucylalanylaspartylglycylprolylthreonylisoleucylglutaminylasparaginylalanylthreonylleucylarginylalanylphenylalanylalanylalanylglycylvalylthreonylprolylalanylglutaminylcysteinylphenylalanylglutamylmethionylleucylalanylleucylisoleucylarginylglutaminyllysylhistidylprolylthreonylisoleucylprolylisoleucylglycylleucylleucylmethionyltyrosylalanylasparaginylleucylvalylphenylalanylasparaginyllysylglycylisoleucylaspartylglutamylphenylalanyltyrosylalanylglutaminylcysteinylglutamyllysylvalylglycylvalylaspartylserylvalylleucylvalylalanylaspartylvalylprolylvalylglutaminylglutamylserylalanylprolylphenylalanylarginylglutaminylalanylalanylleucylarginylhistidylasparaginylvalylalanylprolylisoleucylphenylalanylisoleucylcysteinylprolylprolylaspartylalanylaspartylaspartylaspartylleucylleucylarginylglutaminylisoleucylalanylseryltyrosylglycylarginylglycyltyrosylthreonyltyrosylleucylleucylserylarginylalanylglycylvalylthreonylglycylalanylglutamylasparaginylarginylalanylalanylleucylprolylleucylasparaginylhistidylleucylvalylalanyllysylleucyllysylglutamyltyrosylasparaginylalanylalanylprolylprolylleucylglutaminylglycylphenylalanylglycylisoleucylserylalanylprolylaspartylglutaminylvalyllysylalanylalanylisoleucylaspartylalanylglycylalanylalanylglycylalanylisoleucylserylglycylserylalanylisoleucylvalyllysylisoleucylisoleucylglutamylglutaminylhistidylasparaginylisoleucylglutamylprolylglutamyllysylmethionylleucylalanylalanylleucyllysylvalylphenylalanylvalylglutaminylprolylmethionyllysylalanylalanylthreonylarginylserine',
    'é'.repeat(120) + ' ' + '字'.repeat(150) + ' ' + 'ñ'.repeat(60),
    'x'.repeat(2000),
    '0123456789'.repeat(30),
  ],
  special_tokens: [
    'literal [CLS] and [SEP] and [MASK] and [PAD] and [UNK] tokens',
    'roberta <s> and </s> and <pad> and <unk> and <mask> tokens',
    'lstrip   <mask>   and<mask>x and [SEP][SEP]</s></s>',
    '[cls] lowercase [Sep] variants <S> <MASK>',
    '▁ literal metaspace ▁▁ and ▁word',
  ],
  // Words that the 'added' variants add as normalized (non-special) tokens.
  added_tokens: [
    'I said Hello World to a naïve NAÏVE naive CO2 co2 Straße strasse',
    'hello worldhello world  hello   world helloworld',
    'CO2CO2 xco2x Café-Straße',
  ],
  empty: ['', ' ', '\u00A0', '\u200B', '.', 'a'],
};

function randomPairs(n, seed) {
  const r = rng(seed);
  const pool = [];
  const ranges = [
    [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f], [0x80, 0xff], [0x100, 0x17f],
    [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f],
    [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2100, 0x218f], [0x2460, 0x24ff],
    [0x3000, 0x30ff], [0x3130, 0x318f], [0x3200, 0x33ff], [0x4e00, 0x4fff], [0xac00, 0xad00],
    [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfe00, 0xfe6f], [0xff00, 0xffef], [0x1d400, 0x1d7ff],
    [0x1f300, 0x1f6ff], [0x1f900, 0x1faff], [0x20000, 0x200ff], [0xe0000, 0xe007f], [0xe000, 0xe00f],
    [0x370, 0x380], [0xfff0, 0xffff], [0x1f1e6, 0x1f1ff], [0x1f3fb, 0x1f3ff], [0xfe00, 0xfe0f], [0x200b, 0x200f],
    [0x0e30, 0x0e4f], [0x0640, 0x065f], [0xa960, 0xa97f], [0xd7b0, 0xd7ff], [0x2e80, 0x2fdf], [0x10fff0, 0x10ffff],
    [0x2fff0, 0x30010], [0x1e900, 0x1e95f], [0x11000, 0x1107f], [0x1d165, 0x1d1ad], [0x0300, 0x0300],
  ];
  const words = ['the', 'protein', 'cells', 'of', 'and', 'é', 'naïve', 'über', '東京', 'ÅNGSTRÖM'];
  function str(len) {
    let s = '';
    for (let i = 0; i < len; i++) {
      const x = r();
      if (x < 0.15) s += ' ';
      else if (x < 0.3) s += words[Math.floor(r() * words.length)];
      else {
        const [lo, hi] = ranges[Math.floor(r() * ranges.length)];
        const cp = lo + Math.floor(r() * (hi - lo + 1));
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        s += String.fromCodePoint(cp);
      }
    }
    return s;
  }
  const pairs = [];
  for (let i = 0; i < n; i++) {
    pairs.push({ cat: 'random', query: str(1 + Math.floor(r() * 20)), passage: str(1 + Math.floor(r() * 200)) });
  }
  return pairs;
}

// Word soups around the truncation limits: HF stops tokenizing a sequence
// after the word that reaches max_length tokens, and longest_first then
// compares those capped lengths, so word boundaries near the limit matter.
function probePairs(n, seed) {
  const r = rng(seed);
  const words = ['a', 'the', 'allogeneic', 'myocardial', 'infarction', '.', ',', '[SEP]', '<mask>', 'é', '東京',
    'supercalifragilistic', 'x', 'pneumonoultramicroscopic', '!!', 'naïve', 'Ελληνικά', ' ', '\u00A0'];
  const soup = (k) => {
    const out = [];
    for (let i = 0; i < k; i++) out.push(words[Math.floor(r() * words.length)]);
    return out.join(r() < 0.5 ? ' ' : '');
  };
  const pairs = [];
  for (let i = 0; i < n; i++) {
    pairs.push({ cat: 'trunc_probe', query: soup(3 + Math.floor(r() * 40)), passage: soup(3 + Math.floor(r() * 90)) });
  }
  return pairs;
}

function buildPairs() {
  let pairs = [];
  pairs = pairs.concat(realPairs('scifact', 200, 5));
  for (const c of ['cranfield', 'med', 'cisi', 'cacm', 'npl']) pairs = pairs.concat(realPairs(c, 6, 5));
  // FIXTURE_REAL_CANDS=k adds every dev query of every collection with its
  // top k candidates (stress runs only).
  const realCands = Number(process.env.FIXTURE_REAL_CANDS || 0);
  if (realCands > 0) {
    for (const c of ['scifact', 'cranfield', 'med', 'cisi', 'cacm', 'npl']) pairs = pairs.concat(realPairs(c, 100000, realCands));
  }
  // Adversarial: each string as a query against a real passage, as a
  // passage against a real query, and paired with every other string of
  // its category.
  const real = pairs.slice(0, 50);
  let k = 0;
  for (const [cat, list] of Object.entries(adversarial)) {
    for (const s of list) {
      const base = real[k++ % real.length];
      pairs.push({ cat, query: s, passage: base.passage });
      pairs.push({ cat, query: base.query, passage: s });
    }
    for (let i = 0; i < list.length; i++) {
      pairs.push({ cat, query: list[i], passage: list[(i + 1) % list.length] + ' ' + list[(i + 2) % list.length] });
    }
  }
  // Very long passages: a few real passages glued together.
  for (let i = 0; i < 10; i++) {
    const parts = [];
    for (let j = 0; j < 12; j++) parts.push(pairs[(i * 37 + j * 11) % 1000].passage);
    pairs.push({ cat: 'long_passage', query: pairs[i * 13].query, passage: parts.join(' ') });
  }
  // Very long query (longer than every truncation budget).
  pairs.push({ cat: 'long_passage', query: pairs[1].passage + ' ' + pairs[2].passage, passage: pairs[3].passage });
  pairs = pairs.concat(randomPairs(nRandom, seed));
  pairs = pairs.concat(probePairs(250, 7));
  return pairs;
}

// ---------- configurations ----------
// Each one is run through the HF library exactly as a user of it would.

const configs = [
  { name: 'none' },
  { name: 'longest_first_32', strategy: 'LongestFirst', max: 32 },
  { name: 'longest_first_128', strategy: 'LongestFirst', max: 128 },
  { name: 'only_second_32', strategy: 'OnlySecond', max: 32 },
  { name: 'flag_32_128', flag: [32, 128] },
  { name: 'flag_8_24', flag: [8, 24] },
];

function pack(enc) {
  return {
    ids: enc.getIds(),
    t: enc.getTypeIds().join(''),
    m: enc.getAttentionMask().join(''),
  };
}

async function runConfig(tok, cfg, pairs) {
  const res = [];
  if (cfg.flag) {
    // FlagEmbedding: query and passage tokenized without special tokens,
    // each truncated on its own, then joined with only_second truncation
    // to query_max_len + passage_max_len.
    const [q, p] = cfg.flag;
    tok.setTruncation(q + Math.floor(p / 4));
    const qs = await tok.encodeBatch(pairs.map((x) => x.query), { addSpecialTokens: false });
    tok.setTruncation(p + Math.floor(q / 2));
    const ps = await tok.encodeBatch(pairs.map((x) => x.passage), { addSpecialTokens: false });
    tok.setTruncation(q + p, { strategy: 'OnlySecond' });
    for (let i = 0; i < pairs.length; i++) {
      try {
        res.push(pack(tok.postProcess(qs[i], ps[i], true)));
      } catch (e) {
        res.push({ error: String(e.message || e) });
      }
    }
    tok.disableTruncation();
    return res;
  }
  if (cfg.strategy) tok.setTruncation(cfg.max, { strategy: cfg.strategy });
  else tok.disableTruncation();
  for (const x of pairs) {
    try {
      res.push(pack(await tok.encode(x.query, x.passage)));
    } catch (e) {
      res.push({ error: String(e.message || e) });
    }
  }
  tok.disableTruncation();
  return res;
}

// Variants of the post-processor, to check RobertaProcessing and
// BertProcessing type ids as well as TemplateProcessing.
function variant(file, kind) {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (kind === 'roberta') {
    j.post_processor = { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: true };
  } else if (kind === 'bert') {
    j.post_processor = { type: 'BertProcessing', sep: ['[SEP]', 102], cls: ['[CLS]', 101] };
  }
  const tmp = path.join(os.tmpdir(), `rerank-${kind}-${process.pid}.json`);
  fs.writeFileSync(tmp, JSON.stringify(j));
  const tok = Tokenizer.fromFile(tmp);
  fs.unlinkSync(tmp);
  return tok;
}

async function main() {
  const pairs = buildPairs();
  const pj = pairs.map((p, i) => JSON.stringify({ i, cat: p.cat, query: p.query, passage: p.passage })).join('\n') + '\n';
  fs.writeFileSync(path.join(out, 'pairs.jsonl.gz'), zlib.gzipSync(pj, { level: 9 }));
  const toks = [
    { name: 'bert', dir: 'bert-uncased-wordpiece-tokenizer', variant: 'bert' },
    { name: 'xlmr', dir: 'xlmr-layout-unigram-tokenizer', variant: 'roberta' },
  ];
  const version = require('tokenizers/package.json').version;
  for (const t of toks) {
    const file = path.join(shared, 'models', t.dir, 'tokenizer.json');
    const tok = Tokenizer.fromFile(file);
    const lines = [JSON.stringify({ tokenizers: version, tokenizer: t.dir, pairs: pairs.length })];
    let n = 0;
    for (const cfg of configs) {
      const res = await runConfig(tok, cfg, pairs);
      res.forEach((r, i) => lines.push(JSON.stringify({ i, c: cfg.name, ...r })));
      n += res.length;
    }
    // Post-processor variant on the first 300 pairs.
    const vt = variant(file, t.variant);
    const sub = pairs.slice(0, 300);
    const cfg = { name: 'longest_first_128', strategy: 'LongestFirst', max: 128 };
    const res = await runConfig(vt, cfg, sub);
    res.forEach((r, i) => lines.push(JSON.stringify({ i, c: t.variant + 'processing_longest_first_128', ...r })));
    n += res.length;
    // Normalized added tokens (tokenizer.addTokens) on the first 300 pairs
    // and the added_tokens category. The header line records the resulting
    // added_tokens so that the Go test can rebuild the same tokenizer.
    const at = Tokenizer.fromFile(file);
    at.addTokens(['hello world', 'naïve', 'CO2', 'Straße']);
    const tmp = path.join(os.tmpdir(), `rerank-added-${process.pid}.json`);
    at.save(tmp);
    const added = JSON.parse(fs.readFileSync(tmp, 'utf8')).added_tokens;
    fs.unlinkSync(tmp);
    lines[0] = JSON.stringify({ ...JSON.parse(lines[0]), added_tokens: added });
    const idx = pairs.map((p, i) => i).filter((i) => i < 300 || pairs[i].cat === 'added_tokens');
    for (const c of [configs[0], configs[1]]) {
      const r2 = await runConfig(at, c, idx.map((i) => pairs[i]));
      r2.forEach((r, j) => lines.push(JSON.stringify({ i: idx[j], c: 'added_' + c.name, ...r })));
      n += r2.length;
    }
    fs.writeFileSync(path.join(out, `expected-${t.name}.jsonl.gz`), zlib.gzipSync(lines.join('\n') + '\n', { level: 9 }));
    console.log(`${t.name}: ${pairs.length} pairs, ${n} encodings (tokenizers ${version})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
