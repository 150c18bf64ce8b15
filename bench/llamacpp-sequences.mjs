#!/usr/bin/env node
// llama.cpp (node-llama-cpp) decode of N sequences in one context, evaluated concurrently (node-llama-cpp batches the
// sequences' tokens into shared llama_decode calls): the peer figure for bench/server-streams.sh.
//   node bench/llamacpp-sequences.mjs --harness DIR --model FILE.gguf --sequences 1,4 --tokens 64 --threads 2
//        [--depth N] [--kv f16|f32]
// DIR is a folder where node-llama-cpp is installed (e.g. the shared harness after `npm install --omit=optional`).
// --depth N: each sequence's prompt is N tokens (evaluated once, before the rounds; each round rolls the cache back to
// it), so decoding runs at positions N .. N+tokens — 567 is where bench/server-streams.sh decodes (InternLM's default
// system prompt and the user line). Default: a 5-token prompt. --kv: the cache type (llama.cpp's default is f16).
import { createRequire } from "module";
import path from "path";
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith("--") ? a.push([v.slice(2), all[i + 1]]) : a, a), []));
const require = createRequire(path.resolve(args.harness, "package.json"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));
const threads = Number(args.threads || 2), tokens = Number(args.tokens || 64), rounds = Number(args.rounds || 2);
const depth = Math.max(5, Number(args.depth || 5)), kv = (args.kv || "f16").toUpperCase();
const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const median = a => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
// one context per sequence count, prompts evaluated once; then a warm-up round each and the timed rounds interleaved
// (as bench/server-streams.mjs does), each round rolling the caches back to the prompts
const setups = [];
for (const n of (args.sequences || "1,4").split(",").map(Number)) {
  const context = await model.createContext({ contextSize: n * (depth + tokens + 64), sequences: n, threads: { ideal: threads, min: threads },
    experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv });
  const seqs = Array.from({ length: n }, () => context.getSequence());
  // a distinct prompt of `depth` tokens per sequence; all but its last token evaluated once, concurrently
  const prompts = seqs.map((_, i) => [1, ...Array.from({ length: depth - 1 }, (_, k) => 300 + i + (k * 7) % 5000)]);
  const t00 = performance.now();
  await Promise.all(seqs.map((s, i) => s.controlledEvaluate(prompts[i].slice(0, depth - 1))));
  if (depth > 5) console.log(`llama.cpp sequences ${n}: prompts of ${depth} tokens evaluated in ${((performance.now() - t00) / 1000).toFixed(1)} s (${kv} cache)`);
  setups.push({ n, context, seqs, prompts, rates: [] });
}
async function round({ n, seqs, prompts }) {
  // back to the prompt (less its last token), then its last token gives the first generated one
  await Promise.all(seqs.map(s => s.nextTokenIndex > depth - 1 ? s.eraseContextTokenRanges([{ start: depth - 1, end: s.nextTokenIndex }]) : null));
  const firsts = await Promise.all(seqs.map((s, i) => s.controlledEvaluate([[prompts[i][depth - 1], greedy]])));
  const t0 = performance.now();
  await Promise.all(seqs.map(async (s, i) => {
    let tok = firsts[i][0].next.token;
    for (let k = 0; k < tokens; k++) tok = (await s.controlledEvaluate([[tok, greedy]]))[0].next.token;
  }));
  return n * tokens / ((performance.now() - t0) / 1000);
}
for (const st of setups) await round(st);
for (let r = 1; r <= rounds; r++) {
  for (const st of setups) {
    const rate = await round(st);
    st.rates.push(rate);
    console.log(`llama.cpp sequences ${st.n} round ${r}: aggregate decode ${rate.toFixed(2)} tok/s`);
  }
}
const summary = Object.fromEntries(setups.map(st => [st.n, median(st.rates)]));
for (const st of setups) await st.context.dispose();
console.log(JSON.stringify({ engine: "llama.cpp (node-llama-cpp)", tokens, threads, depth, kv_cache: kv.toLowerCase(), aggregate_tok_s: summary }));
