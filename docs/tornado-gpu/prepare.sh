#!/usr/bin/env bash
# Fills .carry/ (git-ignored) with what run-suite.sh needs on a machine without Java or Maven: the CLI jar, the
# compiled model generator, a jlink'd JDK 25 runtime and the TornadoVM SDK archive. Run here, from anywhere:
#   docs/tornado-gpu/prepare.sh [SDK.tar.xz]     (default: the OpenCL+PTX SDK in ../shared/tornado)
# Then on the device:  docs/tornado-gpu/run-suite.sh .carry      (the device tool's carry: [".carry"])
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/build-support/find-jdk.sh"
sdk_tar=${1:-$root/../shared/tornado/tornadovm-5.2.0-jdk25-opencl-ptx.tar.xz}
carry=$root/.carry
mkdir -p "$carry"
(cd "$root" && ./build -o -q package -DskipTests)
cp "$root/cli/target/internlm-cli.jar" "$carry/"
"$JAVA_HOME/bin/javac" -d "$carry" -cp "$root/cli/target/internlm-cli.jar" "$root/docs/tornado-gpu/SynthModel.java"
if [ ! -f "$carry/jdk25-runtime.tar.xz" ]; then
    tmp=$(mktemp -d)
    "$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.management,java.naming,java.net.http,java.sql,jdk.unsupported,jdk.incubator.vector,jdk.management,jdk.internal.vm.ci,jdk.crypto.ec,java.desktop,jdk.zipfs,java.instrument,jdk.jfr,java.rmi,java.compiler,java.scripting,java.xml \
        --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$tmp/jdk25-runtime"
    tar -cJf "$carry/jdk25-runtime.tar.xz" -C "$tmp" jdk25-runtime
    rm -rf "$tmp"
fi
[ -f "$sdk_tar" ] && cp "$sdk_tar" "$carry/"
du -sh "$carry"/*
