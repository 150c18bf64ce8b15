#!/usr/bin/env bash
# One call on a machine with a GPU, in priority order, each step under a timeout and within a time budget:
#   1. the devices, and TornadoVM against the CPU backend on three fixtures (correctness on the GPU);
#   2. single-stream decode tok/s and fraction of the measured-bandwidth roofline: synthetic InternLM2.5 1.8B and 7B,
#      F16 then Q8_0, on every GPU device (PTX with CUDA graphs, NVIDIA OpenCL), then PTX without CUDA graphs;
#   3. where the time goes per kernel (`generate --profile`: device time and GB/s of each kernel, host time per token)
#      on the 1.8B F16 model, PTX without CUDA graphs (captured graphs hide kernel times) and OpenCL;
#   4. the kernel table (`bench kernels`: every decode kernel and its variants at 7B shapes);
#   5. prompts and concurrent sequences (pp512, decode of 1, 4 and 16 sequences), if time is left;
#   6. the report (report.md + SVGs, report.html) from every jsonl.
# Needs a JDK 25 runtime (a jlink image is enough), a TornadoVM SDK and cli/target/internlm-cli.jar (built here:
# bench/device-prepare.sh makes all three and says what to carry).
#
#   bench/device-suite.sh [--out DIR] [--carry DIR] [--jdk DIR] [--sdk DIR | --sdk-archive FILE.tar.xz] [--steps 1,2,...]
#                         [--quick] [--with-pocl]
#
#   --carry DIR         unpack the JDK runtime and the TornadoVM SDK archives found in DIR (what device-prepare.sh made)
#   --jdk DIR           JDK 25 runtime (default: $JAVA_HOME, then the usual places)
#   --sdk DIR           TornadoVM SDK (default: $TORNADO_SDK); --sdk-archive unpacks one first (into a writable folder)
#   --steps LIST        only these steps (default: all; the report always runs). The device tool allows 10 minutes a
#                       command: e.g. --steps 1,2 in one call and --steps 3,4,5 in a second, with the same --out
#   --quick             one-layer models and tiny sizes: a check of the script itself (PoCL on a CPU-only machine)
#   --with-pocl         also use a PoCL (CPU OpenCL) device when a GPU is present (slow)
# Environment: SUITE_BUDGET (seconds for everything, default 540), SUITE_MODELS (decode models, default
# "internlm2.5-1.8b:f16 internlm2.5-7b:f16 internlm2.5-1.8b:q8_0 internlm2.5-7b:q8_0"), SUITE_DECODE ("-p 16 -n 64
# -d 0 -b 1 -r 3" on GPUs), SUITE_KERNEL_SHAPE (internlm2.5-7b), SUITE_STEP_TIMEOUT (seconds per run, default 240).
# Writes DIR/{devices.txt, checks.jsonl, decode-*.jsonl, profile-*.txt, kernels.jsonl, batched-*.jsonl, report.*,
# suite.log}. Rows name the commit from INTERNLM_COMMIT, else bench/.commit, else git.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$here/bench-results/$(date -u +%Y%m%d-%H%M%S)"
quick=0 pocl=0 sdk_archive="" carry="" steps="1,2,3,4,5"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --carry) carry="$2"; shift 2 ;;
        --jdk) export JAVA_HOME="$2"; shift 2 ;;
        --sdk) export TORNADO_SDK="$2"; shift 2 ;;
        --sdk-archive) sdk_archive="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --with-pocl) pocl=1; shift ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "device-suite: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/suite.log") 2>&1
t0=$(date +%s)
budget=${SUITE_BUDGET:-540}
step_timeout=${SUITE_STEP_TIMEOUT:-240}
status=0
step() { echo; echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
want() { [[ ",$steps," == *",$1,"* ]]; }
left() { echo $(( budget - ($(date +%s) - t0) )); }
# run NAME SECONDS CMD...: runs CMD under a timeout no longer than what is left of the budget; skipped when < 20 s remain
run() {
    local name=$1 limit=$2; shift 2
    local l; l=$(left)
    if [ "$l" -lt 20 ]; then
        echo "--- $name: skipped (budget spent)"
        return 0
    fi
    [ "$limit" -gt "$l" ] && limit=$l
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "--- $name: exit $rc$([ $rc -eq 124 ] && echo " (timed out after $limit s)")"
        status=1
    fi
    return 0
}

if [ -n "$carry" ]; then
    step "unpacking the JDK and the TornadoVM SDK from $carry"
    mkdir -p "$out/.rt"
    jdk_tar=$(ls "$carry"/jdk25-runtime*.tar.xz 2>/dev/null | head -n1)
    [ -n "$jdk_tar" ] && tar -xJf "$jdk_tar" -C "$out/.rt" && export JAVA_HOME="$out/.rt/jdk25-runtime"
    [ -z "$sdk_archive" ] && sdk_archive=$(ls "$carry"/tornadovm-*.tar.xz 2>/dev/null | head -n1)
fi
if [ -n "$sdk_archive" ]; then
    mkdir -p "$out/.rt"
    tar -xJf "$sdk_archive" -C "$out/.rt"
    TORNADO_SDK=$(dirname "$(dirname "$(find "$out/.rt" -path '*/bin/tornado' -type f | head -n1)")")
    export TORNADO_SDK
fi
if [ -z "${TORNADO_SDK:-}" ] || [ ! -x "$TORNADO_SDK/bin/tornado" ]; then
    echo "device-suite: set TORNADO_SDK (or --sdk / --sdk-archive / --carry) to a TornadoVM SDK" >&2
    exit 1
fi
if [ ! -f "$here/cli/target/internlm-cli.jar" ]; then
    echo "device-suite: build cli/target/internlm-cli.jar first (bench/device-prepare.sh) and bring it along" >&2
    exit 1
fi
export TORNADOVM_HOME="$TORNADO_SDK"
il() { "$here/internlm" "$@"; }
if [ -z "${INTERNLM_COMMIT:-}" ] && [ -f "$here/bench/.commit" ]; then
    INTERNLM_COMMIT=$(cat "$here/bench/.commit"); export INTERNLM_COMMIT
fi

step "devices"
run devices 60 "$here/internlm" devices > "$out/devices.txt" 2>&1
cat "$out/devices.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.memory --format=csv | tee -a "$out/devices.txt"
# TornadoVM ids (lines "  B:D  BACKEND  TYPE  name, GiB"), without PoCL's CPU device when a GPU is there
mapfile -t all_ids < <(sed -n 's/^  \([0-9]*:[0-9]*\) .*/\1/p' "$out/devices.txt")
mapfile -t gpu_ids < <(grep -E '^  [0-9]+:[0-9]+ ' "$out/devices.txt" | grep -viE 'pthread|pocl| cpu ' | sed -n 's/^  \([0-9]*:[0-9]*\) .*/\1/p')
mapfile -t ptx_ids < <(grep -E '^  [0-9]+:[0-9]+  PTX' "$out/devices.txt" | sed -n 's/^  \([0-9]*:[0-9]*\) .*/\1/p')
if [ ${#all_ids[@]} -eq 0 ]; then
    echo "device-suite: TornadoVM lists no device" >&2
    exit 1
fi
if [ ${#gpu_ids[@]} -eq 0 ] || [ "$pocl" = 1 ]; then ids=("${all_ids[@]}"); else ids=("${gpu_ids[@]}"); fi
tdevs=$(IFS=,; echo "${ids[*]}")
opencl_ids=()
for d in "${ids[@]}"; do
    [[ " ${ptx_ids[*]} " == *" $d "* ]] || opencl_ids+=("$d")
done
echo "TornadoVM devices used: $tdevs (PTX: ${ptx_ids[*]:-none})"

if [ "$quick" = 1 ]; then
    models=${SUITE_MODELS:-"internlm2.5-1.8b:f16 internlm2.5-1.8b:q8_0"}
    layers="--synthetic-layers 1"
    decode=${SUITE_DECODE:-"-p 4 -n 4 -d 0 -b 1 -r 1 --probe-mib 64"}
    batched=${SUITE_BATCHED:-"-p 16 -n 4 -d 0 -b 1,2 -r 1 --probe-mib 64"}
    kernel_args="--shape ${SUITE_KERNEL_SHAPE:-internlm2.5-1.8b} --types q8_0 --kernels qkv,attention --variants wg64,split8 --depths 256 -r 2 --probe-mib 64"
    profile_n=4
else
    models=${SUITE_MODELS:-"internlm2.5-1.8b:f16 internlm2.5-7b:f16 internlm2.5-1.8b:q8_0 internlm2.5-7b:q8_0"}
    layers=""
    decode=${SUITE_DECODE:-"-p 16 -n 64 -d 0 -b 1 -r 3"}
    batched=${SUITE_BATCHED:-"-p 512 -n 32 -d 0 -b 1,4,16 -r 1"}
    kernel_args="--shape ${SUITE_KERNEL_SHAPE:-internlm2.5-7b} --types f16,q8_0 --depths 4096,16384 -r 10"
    profile_n=64
fi
fixtures=("$here"/testdata/fixtures/internlm2-tiny-q8_0.gguf "$here"/testdata/fixtures/internlm2-tiny-f16.gguf "$here"/testdata/fixtures/internlm3-d128-gqa16-q4_0-s3.gguf)
mkdir -p "$out/.models"
model_file() { echo "$out/.models/${1/:/-}.gguf"; }

if want 1; then
step "1. correctness: TornadoVM against the CPU backend on ${#fixtures[@]} fixtures ($tdevs)"
run check 180 "$here/internlm" bench check "${fixtures[@]}" --devices "$tdevs" --out "$out/checks.jsonl"

fi

if want 2; then
step "2. single-stream decode on $tdevs (CUDA graphs on PTX), then PTX without CUDA graphs"
for m in $models; do
    # shellcheck disable=SC2086
    run "decode $m" "$step_timeout" "$here/internlm" bench -q --synthetic "$m" $layers --synthetic-file "$(model_file "$m")" --devices "$tdevs" $decode \
        -o jsonl --out "$out/decode-${m/:/-}.jsonl"
done
if [ ${#ptx_ids[@]} -gt 0 ]; then
    for m in $models; do
        # shellcheck disable=SC2086
        run "decode $m, no CUDA graphs" "$step_timeout" "$here/internlm" bench -q --no-cuda-graphs --synthetic "$m" $layers --synthetic-file "$(model_file "$m")" \
            --devices "$(IFS=,; echo "${ptx_ids[*]}")" $decode -o jsonl --out "$out/decode-${m/:/-}-no-cuda-graphs.jsonl"
    done
fi

fi

if want 3; then
step "3. per-kernel profile of decode (1.8B F16)"
pm=$(echo "$models" | tr ' ' '\n' | head -n1)
pf=$(model_file "$pm")
# a separate call (--steps 3,...) finds the model files of step 2 in the same --out; else write the model first
[ -f "$pf" ] || run "write $pm" "$step_timeout" "$here/internlm" bench -q --synthetic "$pm" $layers --synthetic-file "$pf" --devices cpu -p 1 -n 1 -r 1 --probe-mib 16 -o jsonl --out /dev/null
if [ -f "$pf" ]; then
    for d in "${ids[@]}"; do
        # captured CUDA graphs have no per-kernel times: profile PTX without them
        run "profile $pm on $d" 180 "$here/internlm" generate -q -m "$pf" --backend tornado --device "$d" --no-cuda-graphs --ctx 1024 --prompt-ids 1,2,3,4,5,6,7,8 \
            -n "$profile_n" --temperature 0 --ignore-eos --profile > "$out/profile-${pm/:/-}-${d/:/_}.txt" 2>&1
        sed -n '/TornadoVM profile/,$p' "$out/profile-${pm/:/-}-${d/:/_}.txt"
    done
else
    echo "--- no model file for $pm (its decode step did not run)"
fi

fi

if want 4; then
step "4. kernel table on $tdevs"
# shellcheck disable=SC2086
run kernels 240 "$here/internlm" bench kernels --devices "$tdevs" $kernel_args --out "$out/kernels.jsonl"

fi

if want 5; then
step "5. prompts and concurrent sequences on $tdevs (issue 11)"
for m in $models; do
    # shellcheck disable=SC2086
    run "batched $m" "$step_timeout" "$here/internlm" bench -q --synthetic "$m" $layers --synthetic-file "$(model_file "$m")" --devices "$tdevs" $batched \
        -o jsonl --out "$out/batched-${m/:/-}.jsonl"
done
fi

step "6. report"
budget=$(( budget + 60 ))   # the report always gets its minute
run report 60 "$here/internlm" bench report "$out"/*.jsonl -o "$out/report.md"
run report 60 "$here/internlm" bench report "$out"/*.jsonl -o "$out/report.html"
rm -rf "$out/.rt"
want 5 && rm -rf "$out/.models"   # the last step that needs them
step "done: $out (exit status $status)"
exit "$status"
