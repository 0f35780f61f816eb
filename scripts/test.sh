#!/usr/bin/env bash
# Builds tapegrad and runs every test twice: once in an optimised build, once
# in a debug build with AddressSanitizer and UndefinedBehaviorSanitizer, where
# any report fails the run. Installs missing Debian packages first (as root).
#
# Usage: scripts/test.sh            (from anywhere inside the repository)
# Environment: JOBS sets build and test parallelism (default: nproc).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}

scripts/deps.sh

# Prints Criterion's summary line of every test executable in a ctest log.
print_summaries() {
    local log=$1/Testing/Temporary/LastTest.log
    if [ -f "$log" ]; then
        grep -E '^\[====\] Synthesis:' "$log" || true
    fi
}

run_suite() {
    local dir=$1
    shift
    echo "== configure $dir: $*"
    cmake -S . -B "$dir" "$@" >/dev/null
    echo "== build $dir"
    cmake --build "$dir" -j "$jobs"
    echo "== test $dir"
    local status=0
    (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 1500) || status=$?
    print_summaries "$dir"
    return $status
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

run_suite build -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_WERROR=ON -DTAPEGRAD_BUILD_TESTS=ON \
    -DTAPEGRAD_BUILD_MODELS=ON
run_suite build-sanitize -DCMAKE_BUILD_TYPE=Debug -DTAPEGRAD_SANITIZE=ON -DTAPEGRAD_WERROR=ON \
    -DTAPEGRAD_BUILD_TESTS=ON -DTAPEGRAD_BUILD_MODELS=ON \
    -DTAPEGRAD_BUILD_BENCH=OFF
echo "All tests passed in the optimised and the sanitizer builds."
