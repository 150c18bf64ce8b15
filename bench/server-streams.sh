#!/usr/bin/env bash
# Starts the server on a model and measures aggregate decode of 1 and 4 concurrent streams (bench/server-streams.mjs).
#   bench/server-streams.sh --model models/internlm2_5-1_8b-synth-q8_0.gguf [--threads 2] [--streams 1,4] [--tokens 64] [--rounds 2]
#                           [--kv-cache f32|f16]   (llama.cpp's own default cache is f16)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model="" threads=2 streams=1,4 tokens=64 rounds=2 port=18089 kv=f32
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --streams) streams="$2"; shift 2 ;;
        --tokens) tokens="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --kv-cache) kv="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$model" ] || { echo "usage: $0 --model FILE.gguf [--threads N] [--streams 1,4] [--tokens N] [--rounds N] [--kv-cache f32|f16]" >&2; exit 2; }
command -v node >/dev/null || { echo "node is needed for the client" >&2; exit 1; }
par=$(tr ',' '\n' <<<"$streams" | sort -n | tail -n1)
INTERNLM_NO_TORNADO=1 "$root/internlm" serve --model "$model" --threads "$threads" --parallel "$par" --port "$port" --ctx 1024 --kv-cache "$kv" -q &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "the server exited" >&2; exit 1; }
    sleep 1
done
node "$root/bench/server-streams.mjs" --url "http://127.0.0.1:$port" --streams "$streams" --tokens "$tokens" --rounds "$rounds"
