#!/usr/bin/env bash
# Installs an official TornadoVM release for this project (or uses an existing one), for users with internet access.
# It never builds TornadoVM from source.
#
#   ./setup-tornado.sh [--backend opencl|ptx|spirv|full] [--version 5.2.0] [--prefix DIR] [--dry-run]
#
# Order: an SDK already named by TORNADO_SDK (or TORNADOVM_HOME) is used as is; otherwise SDKMAN! installs the
# release when it is present (`sdk install tornadovm <version>-jdk25-<backend>`); otherwise the release archive is
# downloaded from TornadoVM's GitHub releases (override the address with TORNADO_URL) and unpacked under --prefix.
# Afterwards it prints the environment to export and checks the installation with `tornado --devices`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

backend=opencl
version=5.2.0
prefix="${HOME}/.local/share/internlm/tornadovm"
dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend="$2"; shift 2 ;;
        --version) version="$2"; shift 2 ;;
        --prefix) prefix="$2"; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "setup-tornado: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$backend" in
    opencl|ptx|spirv|full) ;;
    *) echo "setup-tornado: --backend must be opencl, ptx, spirv or full" >&2; exit 2 ;;
esac

run() { # prints, and runs unless --dry-run
    echo "+ $*"
    if [ "$dry" = 0 ]; then "$@"; fi
}

# 1. the JDK: TornadoVM 5.2.0-jdk25 needs JDK 25
. "$here/build-support/find-jdk.sh"
echo "JDK: $JAVA_HOME"

# 2. the SDK
sdk_dir=""
if [ -n "${TORNADO_SDK:-${TORNADOVM_HOME:-}}" ]; then
    sdk_dir="${TORNADO_SDK:-$TORNADOVM_HOME}"
    echo "using the TornadoVM SDK named by TORNADO_SDK/TORNADOVM_HOME: $sdk_dir"
    if [ ! -x "$sdk_dir/bin/tornado" ]; then
        echo "setup-tornado: $sdk_dir has no bin/tornado: not a TornadoVM SDK" >&2
        exit 1
    fi
elif [ -n "${SDKMAN_DIR:-}" ] && [ -s "$SDKMAN_DIR/bin/sdkman-init.sh" ]; then
    candidate="${version}-jdk25-${backend}"
    echo "installing TornadoVM $candidate with SDKMAN!"
    if [ "$dry" = 0 ]; then
        set +u
        # shellcheck disable=SC1091
        . "$SDKMAN_DIR/bin/sdkman-init.sh"
        sdk install tornadovm "$candidate" </dev/null
        set -u
        sdk_dir="$SDKMAN_DIR/candidates/tornadovm/$candidate"
    else
        echo "+ sdk install tornadovm $candidate"
        sdk_dir="$SDKMAN_DIR/candidates/tornadovm/$candidate"
    fi
else
    name="tornadovm-${version}-jdk25-${backend}-linux-amd64"
    url="${TORNADO_URL:-https://github.com/beehive-lab/TornadoVM/releases/download/v${version}-jdk25/${name}.zip}"
    echo "downloading the official release $name"
    run mkdir -p "$prefix"
    run curl -fL --retry 3 -o "$prefix/$name.zip" "$url"
    run unzip -q -o "$prefix/$name.zip" -d "$prefix/$name"
    if [ "$dry" = 0 ]; then
        sdk_dir=$(dirname "$(find "$prefix/$name" -path '*/bin/tornado' -type f | head -n1)")
        sdk_dir=$(dirname "$sdk_dir")
    else
        sdk_dir="$prefix/$name/tornadovm-${version}-jdk25-${backend}"
    fi
fi

# 3. environment and a check
cat <<EOT

Add this to your shell (or ~/.bashrc):
  export JAVA_HOME=$JAVA_HOME
  export TORNADO_SDK=$sdk_dir
  export TORNADOVM_HOME=$sdk_dir
  export PATH=\$TORNADO_SDK/bin:\$JAVA_HOME/bin:\$PATH

Then run InternLM on the GPU with either of:
  ./internlm generate --prompt "Hello" --backend tornado
  (cd "\$(mktemp -d)" && tornado -jar $here/cli/target/internlm-cli.jar --params "generate --prompt 'Hello' -n 32")
(TornadoVM's launcher takes the application's arguments only as one --params "..." string, and it puts '.' on its
module path: run it from an empty directory — a shared one such as /tmp may hold other programs' jars or modules.)
EOT
echo
if [ "$dry" = 0 ]; then
    export JAVA_HOME TORNADO_SDK="$sdk_dir" TORNADOVM_HOME="$sdk_dir"
    # the launcher puts '.' on the module path: run it from an empty directory
    (cd "$(mktemp -d)" && "$sdk_dir/bin/tornado" --devices)
else
    echo "+ tornado --devices   (dry run: nothing installed)"
fi
