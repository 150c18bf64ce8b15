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

for shape in $SHAPES; do
    model=$work/models/$shape-f16.gguf
    [ -f "$model" ] || "$JAVA_HOME/bin/java" -cp "$jar:$carry" SynthModel "$shape" f16 "$model" || { echo "cannot write $model" >&2; continue; }
    for type in $TYPES; do
        quant=(); [ "$type" = f16 ] || quant=(--quantize "$type")
        for dev in $DEVICES; do
            log=$out/$shape-$type-${dev/:/_}.log
            # one bench matrix per (shape, type, device): pp, decode of 1 and of $SEQS concurrent sequences (aggregate)
            timeout "$RUN_TIMEOUT" "$TORNADO_SDK/bin/tornado" --jvm="-Dtornado.recover.bailout=False" -jar "$jar" --params \
                "bench -m $model ${quant[*]} --devices $dev --ctx $CTX -p $PP -n $TG -b 1,$SEQS -r $REPS -o jsonl --out $out/bench-$shape-$type-${dev/:/_}.jsonl" \
                > "$log" 2>&1 || echo "$shape $type $dev: failed (exit $?, see $(basename "$log"))"
        done
    done
done
cd "$out"
"$JAVA_HOME/bin/java" -jar "$jar" bench report "$out"/bench-*.jsonl -o "$out/report.md" && cat "$out/report.md"
rm -rf "$clean"
