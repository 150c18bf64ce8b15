#!/usr/bin/env bash
# CPU decode/prompt speed of this engine next to llama.cpp's, same model, same machine, same thread count.
#
#   bench/compare-llamacpp.sh [--harness DIR] [--threads N] [--model FILE] [--type q8_0|f16|q4_0] [--rounds R]
#
# --harness: the llama.cpp acceptance harness (make-model.mjs, reference.mjs; `npm install --omit=optional` done
#            there). Default: ../shared/harness next to the repository.
# --model:   a GGUF to use; default: generated once with the harness as an InternLM2.5-1.8B-shaped synthetic model
#            (dim 2048, 24 layers, 16 heads / 8 KV heads, ffn 8192, vocab 92544) under ./models/ (git-ignored).
# --rounds:  llama.cpp and this engine run alternately R times (default 3), 2 timed reps each, so that a slow spell of
#            a shared machine hits both; the ratio is median / median over all reps.
# Prints both sets of numbers and the ratios. Run it on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness="$root/../shared/harness"
threads=2
type=q8_0
model=""
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --harness) harness="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --type) type="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -f "$harness/reference.mjs" ] || { echo "no llama.cpp harness at $harness (use --harness DIR)" >&2; exit 1; }
[ -d "$harness/node_modules" ] || (cd "$harness" && npm install --omit=optional)
mkdir -p "$root/models"
if [ -z "$model" ]; then
    model="$root/models/internlm2_5-1_8b-synth-$type.gguf"
    if [ ! -f "$model" ]; then
        echo "generating $model (about a minute) ..."
        node "$harness/make-model.mjs" --arch internlm2 --dim 2048 --layers 24 --heads 16 --kv-heads 8 --ffn 8192 \
            --vocab 92544 --ctx 32768 --rope-theta 1000000 --type "$type" --seed 1 --chat-eos --out "$model" >/dev/null
    fi
fi
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds: llama.cpp (128-token prompt, 64 decoded tokens, 2 reps, $threads threads) ..."
    node "$harness/reference.mjs" --model "$model" --sections bench --bench-prompt 128 --bench-gen 64 --bench-reps 2 \
        --threads "$threads" > "$out/llamacpp-$r.json"
    echo "round $r/$rounds: this engine (same sizes) ..."
    "$root/internlm" bench -q --model "$model" --threads "$threads" -p 128 -n 64 -r 2 --devices cpu -o json > "$out/ours-$r.json"
done
node - "$out" "$rounds" <<'JS'
const fs = require("fs");
const [dir, rounds] = process.argv.slice(2);
const med = a => { const s = [...a].sort((x, y) => x - y), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const L = { pp: [], tg: [] }, O = { pp: [], tg: [] };
let backend = "";
for (let r = 1; r <= Number(rounds); r++) {
    for (const rep of JSON.parse(fs.readFileSync(`${dir}/llamacpp-${r}.json`)).bench.reps) {
        L.pp.push(rep.llama_perf.prompt_eval.tok_s); L.tg.push(rep.llama_perf.eval.tok_s);
    }
    for (const row of JSON.parse(fs.readFileSync(`${dir}/ours-${r}.json`))) {
        (row.n_prompt > 0 ? O.pp : O.tg).push(...row.samples_ts);
        backend = `${row.backends}, ${row.gpu_info}, ${row.n_threads} threads`;
    }
}
const f = a => a.map(v => v.toFixed(2)).join(" ");
console.log(`llama.cpp   pp128: ${f(L.pp)}  | tg64: ${f(L.tg)}`);
console.log(`this engine pp128: ${f(O.pp)}  | tg64: ${f(O.tg)}  (${backend})`);
console.log(`medians: llama.cpp pp ${med(L.pp).toFixed(2)} tg ${med(L.tg).toFixed(2)} tok/s; this engine pp ${med(O.pp).toFixed(2)} tg ${med(O.tg).toFixed(2)} tok/s`);
console.log(`ratio to llama.cpp (median / median): prompt ${(med(O.pp) / med(L.pp)).toFixed(2)}x, decode ${(med(O.tg) / med(L.tg)).toFixed(2)}x`);
JS
rm -rf "$out"
