#!/usr/bin/env bash
# Prepares what bench/device-suite.sh needs on a GPU machine that has no Java, Maven or network: builds
# cli/target/internlm-cli.jar and fills .carry/ (git-ignored) with a jlink'd JDK 25 runtime (~36 MB) and the TornadoVM
# SDK archive with the PTX and OpenCL backends (~20 MB), and writes bench/.commit (the rows then name this commit).
#
#   bench/device-prepare.sh [SDK.tar.xz]     (default: the OpenCL+PTX SDK in ../shared/tornado)
#
# Then, with the device tool: carry [".carry", "cli/target/internlm-cli.jar", "bench/.commit"] and run
#   bench/device-suite.sh --carry .carry --out "$OUT/suite"
# (64 MiB may travel in all: the three files come to about 62 MB).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/build-support/find-jdk.sh"
sdk_tar=${1:-$root/../shared/tornado/tornadovm-5.2.0-jdk25-opencl-ptx.tar.xz}
carry=$root/.carry
mkdir -p "$carry"
(cd "$root" && ./build -o -q package -DskipTests)
git -C "$root" rev-parse --short=10 HEAD > "$root/bench/.commit" 2>/dev/null || true
if [ ! -f "$carry/jdk25-runtime.tar.xz" ]; then
    tmp=$(mktemp -d)
    "$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.management,java.naming,java.net.http,java.sql,jdk.unsupported,jdk.incubator.vector,jdk.management,jdk.internal.vm.ci,jdk.crypto.ec,java.desktop,jdk.zipfs,java.instrument,jdk.jfr,java.rmi,java.compiler,java.scripting,java.xml \
        --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$tmp/jdk25-runtime"
    tar -cJf "$carry/jdk25-runtime.tar.xz" -C "$tmp" jdk25-runtime
    rm -rf "$tmp"
fi
if [ -f "$sdk_tar" ]; then
    cp "$sdk_tar" "$carry/"
else
    echo "device-prepare: no TornadoVM SDK archive at $sdk_tar (pass one)" >&2
    exit 1
fi
du -ch "$carry"/* "$root/cli/target/internlm-cli.jar" | tail -n 4
