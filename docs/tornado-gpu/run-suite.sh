#!/usr/bin/env bash
# TornadoVM speed suite (issue 11): prompt processing (pp) and decode with 1, 4 and 16 sequences, per model shape,
# weight type and device. One bench run per (shape, type, device) gives pp, single-sequence decode and the aggregate
# decode of every count in SEQS. Results: one JSON line per run in $OUT/results.jsonl, a Markdown table on stdout.
#
#   docs/tornado-gpu/run-suite.sh [CARRY_DIR]        (CARRY_DIR: what prepare.sh made; default .carry)
# Environment (defaults are the GPU run's):
#   SHAPES="1.8b 7b"  TYPES="f16 q8_0"  DEVICES="0:0 1:0" (NVIDIA OpenCL, PTX; see the devices list printed first)
#   PP=512 TG=32 SEQS=4,16 CTX=1024 REPS=1 RUN_TIMEOUT=600 (s per bench run) WORK=/tmp/internlm-gpu OUT=$WORK/out
#   JAVA_HOME / TORNADO_SDK: used when set, else unpacked from CARRY_DIR
# Models are generated here (F16, seeded random weights); other types are converted at load (--quantize).
# Trial on PoCL:  SHAPES=tiny DEVICES=0:0 PP=64 TG=8 SEQS=4 CTX=256 TORNADO_SDK=/path/to/opencl-sdk docs/tornado-gpu/run-suite.sh .carry
set -uo pipefail
carry=$(cd "${1:-.carry}" && pwd)
work=${WORK:-/tmp/internlm-gpu}
out=${OUT:-$work/out}
mkdir -p "$work/models" "$out"
SHAPES=${SHAPES:-1.8b 7b}; TYPES=${TYPES:-f16 q8_0}; DEVICES=${DEVICES:-0:0 1:0}
PP=${PP:-512}; TG=${TG:-32}; SEQS=${SEQS:-4,16}; CTX=${CTX:-1024}; REPS=${REPS:-1}; RUN_TIMEOUT=${RUN_TIMEOUT:-600}

if [ -z "${JAVA_HOME:-}" ]; then
    [ -x "$work/jdk25-runtime/bin/java" ] || tar -xJf "$carry/jdk25-runtime.tar.xz" -C "$work"
    export JAVA_HOME=$work/jdk25-runtime
fi
if [ -z "${TORNADO_SDK:-}" ]; then
    sdk=$(ls -d "$work"/tornadovm-*/ 2>/dev/null | head -1)
    if [ -z "$sdk" ]; then
        tar -xJf "$(ls "$carry"/tornadovm-*.tar.xz | head -1)" -C "$work"
        sdk=$(ls -d "$work"/tornadovm-*/ | head -1)
    fi
    export TORNADO_SDK=${sdk%/}
fi
export PATH=$JAVA_HOME/bin:$PATH
jar=$carry/internlm-cli.jar
clean=$(mktemp -d)   # the tornado launcher puts '.' on its module path: run it from an empty directory
cd "$clean"
echo "== devices ($TORNADO_SDK)"
"$TORNADO_SDK/bin/tornado" --devices 2>&1 | tee "$out/devices.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/devices.txt"

echo "| shape | type | device | pp$PP tok/s | tg$TG tok/s (1 sequence) | aggregate decode tok/s ($SEQS sequences) | backend |"
echo "|---|---|---|---|---|---|---|"
for shape in $SHAPES; do
    model=$work/models/$shape-f16.gguf
    [ -f "$model" ] || "$JAVA_HOME/bin/java" -cp "$jar:$carry" SynthModel "$shape" f16 "$model" || { echo "cannot write $model" >&2; continue; }
    for type in $TYPES; do
        quant=(); [ "$type" = f16 ] || quant=(--quantize "$type")
        for dev in $DEVICES; do
            log=$out/$shape-$type-${dev/:/_}.log
            timeout "$RUN_TIMEOUT" "$TORNADO_SDK/bin/tornado" --jvm="-Dtornado.recover.bailout=False" -jar "$jar" --params \
                "bench -m $model ${quant[*]} --backend tornado --device $dev --ctx $CTX -p $PP -n $TG -r $REPS -s $SEQS --json" \
                > "$log.json" 2> "$log"
            rc=$?
            line=$(grep '^{' "$log.json" | tail -1)
            if [ $rc -ne 0 ] || [ -z "$line" ]; then
                echo "| $shape | $type | $dev | failed (exit $rc, see $(basename "$log")) | | | |"
                continue
            fi
            echo "$line" | sed "s/^{/{\"shape\":\"$shape\",\"type\":\"$type\",\"device\":\"$dev\",/" >> "$out/results.jsonl"
            python3 - "$shape" "$type" "$dev" "$line" <<'PY' 2>/dev/null || echo "| $shape | $type | $dev | $line |"
import json, sys
shape, typ, dev, o = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
agg = ", ".join("%s: %.1f" % (k[4:-17], v) for k, v in o.items() if k.endswith("_aggregate_median"))
print("| %s | %s | %s | %.1f | %.1f | %s | %s |" % (shape, typ, dev, o["pp_median"], o["tg_median"], agg, o["backend"]))
PY
        done
    done
done
rm -rf "$clean"
