#!/usr/bin/env node
// llama.cpp (node-llama-cpp) decode of N sequences in one context, evaluated concurrently (node-llama-cpp batches the
// sequences' tokens into shared llama_decode calls): the peer figure for bench/server-streams.sh.
//   node bench/llamacpp-sequences.mjs --harness DIR --model FILE.gguf --sequences 1,4 --tokens 64 --threads 2
// DIR is a folder where node-llama-cpp is installed (e.g. the shared harness after `npm install --omit=optional`).
import { createRequire } from "module";
import path from "path";
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith("--") ? a.push([v.slice(2), all[i + 1]]) : a, a), []));
const require = createRequire(path.resolve(args.harness, "package.json"));
const { getLlama, LlamaLogLevel } = await import(require.resolve("node-llama-cpp"));
const threads = Number(args.threads || 2), tokens = Number(args.tokens || 64), rounds = Number(args.rounds || 2);
const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const median = a => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const summary = {};
for (const n of (args.sequences || "1,4").split(",").map(Number)) {
  const context = await model.createContext({ contextSize: n * (tokens + 64), sequences: n, threads: { ideal: threads, min: threads } });
  const seqs = Array.from({ length: n }, () => context.getSequence());
  const rates = [];
  for (let r = 0; r <= rounds; r++) {
    await Promise.all(seqs.map(s => s.clearHistory()));
    const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
    // a short distinct prompt per sequence, then decode concurrently; the window runs from the last first token
    const firsts = await Promise.all(seqs.map((s, i) => s.controlledEvaluate([1, 300 + i, 301 + i, 302 + i, [303 + i, greedy]])));
    const t0 = performance.now();
    await Promise.all(seqs.map(async (s, i) => {
      let tok = firsts[i][4].next.token;
      for (let k = 0; k < tokens; k++) tok = (await s.controlledEvaluate([[tok, greedy]]))[0].next.token;
    }));
    const sec = (performance.now() - t0) / 1000;
    if (r === 0) continue;
    rates.push(n * tokens / sec);
    console.log(`llama.cpp sequences ${n} round ${r}: aggregate decode ${(n * tokens / sec).toFixed(2)} tok/s`);
  }
  summary[n] = median(rates);
  await context.dispose();
}
console.log(JSON.stringify({ engine: "llama.cpp (node-llama-cpp)", tokens, threads, aggregate_tok_s: summary }));
