#!/usr/bin/env node
// Aggregate decode throughput of N concurrent streams through the OpenAI-compatible server.
//   node bench/server-streams.mjs --url http://127.0.0.1:8080 --streams 1,4 --tokens 64 [--rounds 2]
// Each stream asks for --tokens tokens (ignore_eos) with a short distinct prompt (stream i's the same whatever the
// count, so each round finds its prompt cached in a slot) and streams them; the final chunk's
// llama.cpp-style "timings" say when its first token came (request start + prompt_ms) and how many tokens followed
// (predicted_n). Aggregate decode tok/s = the tokens after the first of every stream, divided by the time from the
// earliest first token to the latest end (the window in which they decoded together). Prints one line per round, each
// round's ratio to the first stream count, and a JSON summary (medians) at the end.
// Each round also reports (stderr) the steady state: the content chunks that arrived while every stream was decoding
// (after the last stream's first chunk, up to the first stream's last), per second — prompts of streams that started
// later fall outside it.
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith("--") ? a.push([v.slice(2), all[i + 1]]) : a, a), []));
const url = (args.url || "http://127.0.0.1:8080") + "/v1/chat/completions";
const streams = (args.streams || "1,4").split(",").map(Number);
const tokens = Number(args.tokens || 64);
const rounds = Number(args.rounds || 2);

async function one(i, n) {
  const body = { messages: [{ role: "user", content: `Stream ${i}: write a long story.` }], max_tokens: tokens,
    ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } };
  const t0 = performance.now();
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let timings = null, buf = "";
  const arrivals = [];
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const j = JSON.parse(ev.slice(6));
      if (j.timings) timings = j.timings;
      if (j.choices && j.choices.length && j.choices[0].delta && typeof j.choices[0].delta.content === "string") arrivals.push(performance.now());
    }
  }
  const end = performance.now();
  if (!timings) throw new Error("no timings in the final chunk");
  return { start: t0, first: t0 + timings.prompt_ms, last: end, count: timings.predicted_n + 1, arrivals };
}

const median = a => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
// a warm-up round per stream count, then the timed rounds interleaved (1 stream, 4 streams, 1 stream, ...): on a shared
// machine whose speed drifts over minutes, each round's ratio compares neighbours in time
async function round(n) {
  const res = await Promise.all(Array.from({ length: n }, (_, i) => one(i, n)));
  const from = Math.min(...res.map(x => x.first)), to = Math.max(...res.map(x => x.last));
  const decoded = res.reduce((s, x) => s + x.count - 1, 0);
  const tps = decoded / ((to - from) / 1000);
  const ttft = median(res.map(x => x.first - x.start));
  // steady state: chunks that arrived while every stream was decoding
  const w0 = Math.max(...res.map(x => x.arrivals[0])), w1 = Math.min(...res.map(x => x.arrivals[x.arrivals.length - 1]));
  const inWindow = res.reduce((s, x) => s + x.arrivals.filter(t => t > w0 && t <= w1).length, 0);
  const steady = inWindow / ((w1 - w0) / 1000);
  console.error(`   chunks ${res.map(x => x.arrivals.length).join(",")}; steady window ${(w1 - w0).toFixed(0)} ms, ${inWindow} chunks: ${steady.toFixed(2)} tok/s`);
  return { tps, decoded, ttft, steady };
}
const agg = Object.fromEntries(streams.map(n => [n, []])), ratios = Object.fromEntries(streams.map(n => [n, []]));
const steady = Object.fromEntries(streams.map(n => [n, []]));
for (const n of streams) console.error(`streams ${n}: warm-up ${(await round(n)).tps.toFixed(2)} tok/s`);
for (let r = 1; r <= rounds; r++) {
  for (const n of streams) {
    const x = await round(n);
    agg[n].push(x.tps);
    steady[n].push(x.steady);
    console.log(`streams ${n} round ${r}: aggregate decode ${x.tps.toFixed(2)} tok/s (${x.decoded} tokens), per stream ${(x.tps / n).toFixed(2)}, median time to first token ${x.ttft.toFixed(0)} ms`);
  }
  for (const n of streams) ratios[n].push(agg[n][r - 1] / agg[streams[0]][r - 1]);
  console.log(`round ${r}: ${streams.map(n => `${n} streams ${ratios[n][r - 1].toFixed(2)}x`).join(", ")}`);
}
const summary = Object.fromEntries(streams.map(n => [n, median(agg[n])]));
const ratio = Object.fromEntries(streams.map(n => [n, median(ratios[n])]));
for (const n of streams) console.log(`streams ${n}: median aggregate decode ${summary[n].toFixed(2)} tok/s; median of the rounds' ratios ${ratio[n].toFixed(2)}x ${streams[0]} stream(s)`);
const steadyMedian = Object.fromEntries(streams.map(n => [n, median(steady[n])]));
console.log(`steady state (every stream decoding): ${streams.map(n => `${n}: ${steadyMedian[n].toFixed(2)} tok/s`).join(", ")}`);
console.log(JSON.stringify({ tokens, rounds, aggregate_tok_s: summary, ratio_to_first: ratio, steady_tok_s: steadyMedian }));
