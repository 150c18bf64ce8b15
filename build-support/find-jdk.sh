# Sourced by ./build and ./internlm: sets JAVA_HOME to a JDK >= 25 (or exits with a clear message).
# Order: $JAVA_HOME, then /usr/lib/jvm/* (and a few other usual places), then `java` on PATH.

_jdk_major() { # prints the feature version of the JDK at $1, or nothing
    local home="$1" v
    # a runtime without javac will do when nothing is compiled (INTERNLM_RUNTIME_ONLY: ./internlm with the jar built)
    [ -x "$home/bin/java" ] && { [ -n "${INTERNLM_RUNTIME_ONLY:-}" ] || [ -x "$home/bin/javac" ]; } || return 0
    if [ -f "$home/release" ]; then
        v=$(sed -n 's/^JAVA_VERSION="\([0-9][0-9]*\).*/\1/p' "$home/release" | head -n1)
    fi
    if [ -z "$v" ]; then
        v=$("$home/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9][0-9]*\).*/\1/p' | head -n1)
    fi
    echo "$v"
}

find_jdk25() {
    local min=${INTERNLM_MIN_JDK:-25} cand v best="" bestv=0
    if [ -n "${JAVA_HOME:-}" ]; then
        v=$(_jdk_major "$JAVA_HOME")
        if [ -n "$v" ] && [ "$v" -ge "$min" ]; then echo "$JAVA_HOME"; return 0; fi
    fi
    for cand in /usr/lib/jvm/* /usr/local/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
        [ -d "$cand" ] || continue
        v=$(_jdk_major "$cand")
        if [ -n "$v" ] && [ "$v" -ge "$min" ] && [ "$v" -gt "$bestv" ]; then best="$cand"; bestv="$v"; fi
    done
    if [ -n "$best" ]; then echo "$best"; return 0; fi
    if command -v java >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; then
        cand=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
        v=$(_jdk_major "$cand")
        if [ -n "$v" ] && [ "$v" -ge "$min" ]; then echo "$cand"; return 0; fi
    fi
    return 1
}

if ! JAVA_HOME=$(find_jdk25); then
    echo "error: no JDK ${INTERNLM_MIN_JDK:-25} or newer found (looked at \$JAVA_HOME, /usr/lib/jvm/*, and java on PATH)." >&2
    echo "       Install a JDK 25 (e.g. Temurin 25) and/or set JAVA_HOME to it." >&2
    exit 1
fi
export JAVA_HOME
