#!/usr/bin/env bash
# CPU decode/prompt speed of this engine next to llama.cpp's, same model, same machine, same thread count.
#
#   bench/compare-llamacpp.sh [--harness DIR] [--threads N] [--model FILE] [--type q8_0|f16|q4_0]
#
# --harness: the llama.cpp acceptance harness (make-model.mjs, reference.mjs; `npm install --omit=optional` done
#            there). Default: ../shared/harness next to the repository.
# --model:   a GGUF to use; default: generated once with the harness as an InternLM2.5-1.8B-shaped synthetic model
#            (dim 2048, 24 layers, 16 heads / 8 KV heads, ffn 8192, vocab 92544) under ./models/ (git-ignored).
# Prints both sets of numbers and the ratios. Run it on an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
harness="$root/../shared/harness"
threads=2
type=q8_0
model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --harness) harness="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --type) type="$2"; shift 2 ;;
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
ref="$root/models/$(basename "$model" .gguf).llamacpp-bench-t$threads.json"
echo "llama.cpp: 128-token prompt, 64 decoded tokens, 3 reps, $threads threads ..."
node "$harness/reference.mjs" --model "$model" --sections bench --bench-prompt 128 --bench-gen 64 --bench-reps 3 --threads "$threads" > "$ref"
echo "this engine: same sizes ..."
"$root/internlm" bench --model "$model" --threads "$threads" -p 128 -n 64 -r 3 --llamacpp-json "$ref"
