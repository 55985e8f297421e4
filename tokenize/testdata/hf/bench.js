// bench.js measures Hugging Face tokenizers (npm "tokenizers") pair
// encoding throughput on the fixture's real pairs, for comparison with
// tokenize's Go benchmark (BenchmarkEncodePairs):
//
//   taskset -c 0 env UV_THREADPOOL_SIZE=1 RAYON_NUM_THREADS=1 node bench.js   # one core
//   node bench.js                                                             # all cores
//
// The Node binding's encodeBatch takes single sequences only, so pairs go
// through encode(query, passage), which runs on libuv's thread pool; many
// are kept in flight at once.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { Tokenizer } = require('tokenizers');

const shared = path.resolve(process.argv[2] || path.join(__dirname, '../../../../shared'));
const pairs = zlib
  .gunzipSync(fs.readFileSync(path.join(__dirname, '..', 'pairs.jsonl.gz')))
  .toString()
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l))
  .filter((p) => p.cat.startsWith('data/'));
const inputs = pairs.map((p) => [p.query, p.passage]);

async function main() {
  for (const [name, dir] of [
    ['bert', 'bert-uncased-wordpiece-tokenizer'],
    ['xlmr', 'xlmr-layout-unigram-tokenizer'],
  ]) {
    const tok = Tokenizer.fromFile(path.join(shared, 'models', dir, 'tokenizer.json'));
    for (const [cfg, max] of [['none', 0], ['longest_first_512', 512], ['longest_first_128', 128]]) {
      if (max) tok.setTruncation(max, { strategy: 'LongestFirst' });
      else tok.disableTruncation();
      const run = async () => {
        for (let i = 0; i < inputs.length; i += 256) {
          await Promise.all(inputs.slice(i, i + 256).map(([q, p]) => tok.encode(q, p)));
        }
      };
      await run(); // warm up
      let n = 0;
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      let dt = 0;
      while (dt < 3) {
        await run();
        n += inputs.length;
        dt = Number(process.hrtime.bigint() - t0) / 1e9;
      }
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1e6;
      console.log(`${name} ${cfg} encode(q, p): ${(n / dt).toFixed(0)} pairs/s, ${(n / cpu).toFixed(0)} pairs/cpu-s (${inputs.length} pairs, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE || 'default'})`);
    }
    // HF's fastest path for comparison: encodeBatch (rayon inside Rust) on
    // the queries and the passages as single sequences, without the pair
    // step; reported per pair (one query plus one passage).
    tok.disableTruncation();
    const qs = inputs.map((x) => x[0]);
    const ps = inputs.map((x) => x[1]);
    await tok.encodeBatch(qs);
    await tok.encodeBatch(ps);
    let n = 0;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    let dt = 0;
    while (dt < 3) {
      await tok.encodeBatch(qs);
      await tok.encodeBatch(ps);
      n += inputs.length;
      dt = Number(process.hrtime.bigint() - t0) / 1e9;
    }
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    console.log(`${name} none encodeBatch(singles): ${(n / dt).toFixed(0)} pairs/s, ${(n / cpu).toFixed(0)} pairs/cpu-s (RAYON_NUM_THREADS=${process.env.RAYON_NUM_THREADS || 'all'})`);
  }
}
main();
