#!/usr/bin/env bash
# One call on a machine with a GPU: TornadoVM correctness against the CPU backend on the fixtures, the bench matrix on
# synthetic InternLM2.5 1.8B and 7B models (F16 and Q8_0, every device), the kernel table, and the report — all into
# one folder. Needs only a JDK 25 runtime (java; no javac, Maven, Node or network) and a TornadoVM SDK, plus this
# working tree with cli/target/internlm-cli.jar built.
#
#   bench/device-suite.sh [--out DIR] [--jdk DIR] [--sdk DIR | --sdk-archive FILE.tar.xz] [--quick] [--with-pocl]
#
#   --jdk DIR           JDK 25 runtime (default: $JAVA_HOME, then the usual places; a jlink image is fine)
#   --sdk DIR           TornadoVM SDK (default: $TORNADO_SDK); --sdk-archive unpacks one first (into a writable
#                       folder: the launcher writes into the SDK)
#   --quick             small shapes and sizes (a PoCL check of the script itself on a CPU-only machine)
#   --with-pocl         also bench a PoCL (CPU OpenCL) device when a GPU is present (slow on 7B models)
# Sizes can be overridden: SUITE_GPU_SIZES, SUITE_CPU_SIZES (bench options), SUITE_MODELS, SUITE_KERNEL_SHAPE.
# Writes DIR/{devices.txt, checks.jsonl, bench-*.jsonl, kernels.jsonl, report.html, report.md + SVGs, suite.log}.
# The rows name the git commit: from INTERNLM_COMMIT, else bench/.commit (write it before copying a tree without .git:
# git rev-parse --short=10 HEAD > bench/.commit), else git.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$here/bench-results/$(date -u +%Y%m%d-%H%M%S)"
quick=0 pocl=0 sdk_archive=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --jdk) export JAVA_HOME="$2"; shift 2 ;;
        --sdk) export TORNADO_SDK="$2"; shift 2 ;;
        --sdk-archive) sdk_archive="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --with-pocl) pocl=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "device-suite: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/suite.log") 2>&1
t0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - t0 )) s] $*"; }

if [ -n "$sdk_archive" ]; then
    step "unpacking $sdk_archive"
    mkdir -p "$out/.sdk"
    tar -xJf "$sdk_archive" -C "$out/.sdk"
    TORNADO_SDK=$(dirname "$(dirname "$(find "$out/.sdk" -path '*/bin/tornado' -type f | head -n1)")")
    export TORNADO_SDK
fi
if [ -z "${TORNADO_SDK:-}" ] || [ ! -x "$TORNADO_SDK/bin/tornado" ]; then
    echo "device-suite: set TORNADO_SDK (or --sdk / --sdk-archive) to a TornadoVM SDK" >&2
    exit 1
fi
if [ ! -f "$here/cli/target/internlm-cli.jar" ]; then
    echo "device-suite: build cli/target/internlm-cli.jar first (./build package -DskipTests) and bring it along" >&2
    exit 1
fi
export TORNADOVM_HOME="$TORNADO_SDK"
il() { "$here/internlm" "$@"; }
if [ -z "${INTERNLM_COMMIT:-}" ] && [ -f "$here/bench/.commit" ]; then
    INTERNLM_COMMIT=$(cat "$here/bench/.commit"); export INTERNLM_COMMIT
fi

step "devices"
il devices | tee "$out/devices.txt"
# TornadoVM ids, without PoCL's CPU device when a GPU is there (unless --with-pocl)
mapfile -t all_ids < <(sed -n 's/^  \([0-9]*:[0-9]*\) .*/\1/p' "$out/devices.txt")
mapfile -t gpu_ids < <(grep -E '^  [0-9]+:[0-9]+ ' "$out/devices.txt" | grep -viE 'pthread|pocl|cpu' | sed -n 's/^  \([0-9]*:[0-9]*\) .*/\1/p')
if [ ${#all_ids[@]} -eq 0 ]; then
    echo "device-suite: TornadoVM lists no device" >&2
    exit 1
fi
if [ ${#gpu_ids[@]} -eq 0 ] || [ "$pocl" = 1 ]; then ids=("${all_ids[@]}"); else ids=("${gpu_ids[@]}"); fi
tdevs=$(IFS=,; echo "${ids[*]}")
echo "TornadoVM devices used: $tdevs"

if [ "$quick" = 1 ]; then
    models=${SUITE_MODELS:-"internlm2.5-1.8b:f16 internlm2.5-1.8b:q8_0 internlm2.5-7b:f16 internlm2.5-7b:q8_0"}
    layers="--synthetic-layers 1"
    gpu_sizes=${SUITE_GPU_SIZES:-"-p 8 -n 4 -d 0,16 -b 1,2 -r 2 --probe-mib 128"}
    cpu_sizes=${SUITE_CPU_SIZES:-"-p 8 -n 4 -d 0 -b 1,2 -r 2 --probe-mib 128"}
    kernel_args="--shape ${SUITE_KERNEL_SHAPE:-internlm2.5-1.8b} --types q8_0,f16 --variants wg64,native --depths 64 -r 2 --probe-mib 128"
    check_fixtures=("$here"/testdata/fixtures/internlm2-tiny-q8_0.gguf "$here"/testdata/fixtures/internlm2-tiny-f16.gguf "$here"/testdata/fixtures/internlm3-d128-gqa16-q4_0-s3.gguf)
else
    models=${SUITE_MODELS:-"internlm2.5-1.8b:f16 internlm2.5-1.8b:q8_0 internlm2.5-7b:f16 internlm2.5-7b:q8_0"}
    layers=""
    gpu_sizes=${SUITE_GPU_SIZES:-"-p 128 -n 64 -d 0,1024 -b 1,4 -r 3"}
    cpu_sizes=${SUITE_CPU_SIZES:-"-p 64 -n 16 -d 0 -b 1,4 -r 2"}
    kernel_args="--shape ${SUITE_KERNEL_SHAPE:-internlm2.5-7b} --types f16,q8_0,q4_0 --depths 512,4096 -r 20"
    check_fixtures=("$here"/testdata/fixtures)
fi

step "correctness: TornadoVM against the CPU backend on the fixtures ($tdevs)"
status=0
il bench check "${check_fixtures[@]}" --devices "$tdevs" --out "$out/checks.jsonl" || status=$?

for m in $models; do
    file="$out/.models/${m/:/-}.gguf"
    mkdir -p "$out/.models"
    step "bench $m on the CPU"
    # shellcheck disable=SC2086
    il bench -q --synthetic "$m" $layers --synthetic-file "$file" --devices cpu $cpu_sizes -o jsonl --out "$out/bench-${m/:/-}-cpu.jsonl" || status=$?
    step "bench $m on $tdevs"
    # shellcheck disable=SC2086
    il bench -q --synthetic "$m" $layers --synthetic-file "$file" --devices "$tdevs" $gpu_sizes -o jsonl --out "$out/bench-${m/:/-}-tornado.jsonl" || status=$?
    rm -f "$file"
done
rm -rf "$out/.models"

step "kernel table on $tdevs"
# shellcheck disable=SC2086
il bench kernels --devices "$tdevs" $kernel_args --out "$out/kernels.jsonl" || status=$?

step "report"
il bench report "$out"/*.jsonl -o "$out/report.html"
il bench report "$out"/*.jsonl -o "$out/report.md"
rm -rf "$out/.sdk"
step "done: $out (exit status $status)"
exit "$status"
