#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz/ and runs each for a bounded time
# on a fresh copy of its seed corpus (fuzz/corpus/<target>). Fails if a target
# finds a crash, a sanitizer report, a broken contract, a hang or an
# out-of-memory whose stack starts in tapegrad's code. A report whose stack
# starts inside libhdf5 is printed as a known HDF5 limitation and does not fail
# the run (see fuzz/known_hdf5_crashes/README.md).
#
# Usage: fuzz/run.sh [target ...]     targets: checkpoint idx text cli (default: all)
# Environment:
#   FUZZ_SECONDS   fuzzing time per target in seconds (default 60)
#   FUZZ_TIMEOUT   seconds one input may run before it counts as a hang (default 10)
#   FUZZ_RSS_MB    memory limit of a fuzzing process in MB (default 2048)
#   FUZZ_MALLOC_MB largest single allocation in MB before it counts as an
#                  out-of-memory (default 512)
#   JOBS           build parallelism (default: nproc)
# Exits 0 after a message, without fuzzing, if clang or its libFuzzer runtime
# is missing. Inputs that fail are kept in build-fuzz/runs/<target>/artifacts;
# reproduce one with build-fuzz/fuzz/fuzz_<target> FILE.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
timeout_s=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
malloc_mb=${FUZZ_MALLOC_MB:-512}
jobs=${JOBS:-$(nproc)}
build=build-fuzz
all_targets=(checkpoint idx text cli)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi

if ! command -v clang >/dev/null; then
    echo "fuzz/run.sh: clang not found; skipping fuzzing (install clang to run it)"
    exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' \
    >"$probe/probe.c"
if ! clang -fsanitize=fuzzer "$probe/probe.c" -o "$probe/probe" 2>"$probe/log"; then
    echo "fuzz/run.sh: clang cannot link -fsanitize=fuzzer (the libFuzzer runtime is missing;"
    echo "on Debian 12 install libclang-rt-14-dev); skipping fuzzing"
    exit 0
fi

echo "== configure $build"
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPEGRAD_BUILD_FUZZ=ON \
    -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_MODELS=OFF -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
echo "== build $build"
cmake --build "$build" -j "$jobs" --target "${targets[@]/#/fuzz_}"

# HDF5 leaks memory on some malformed files, so leaks inside libhdf5 are not
# reported. The checkpoint target counts HDF5 identifiers itself, which
# catches the handles that tapegrad leaves open.
export LSAN_OPTIONS=suppressions=$root/fuzz/lsan-suppressions.txt:print_suppressions=0
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# Prints the first stack frame of a sanitizer or libFuzzer report that lies in
# libhdf5 or has a source location in this repository: the innermost code of
# tapegrad or of libhdf5 where the fault showed. Frames of the sanitizers, of
# libFuzzer (its main included), of libc and of the allocator carry neither.
# For a hang that is where the alarm stopped it, which for a loop of
# tapegrad's that calls HDF5 may be inside HDF5, so a hang blamed on HDF5
# deserves a look at its stack.
first_own_frame() {
    awk -v root="$root" '/^ *#[0-9]+ 0x/ {
        if ($0 ~ /libhdf5/ || index($0, " " root "/") > 0) { print; exit }
    }' "$1"
}

# Re-runs one saved input and decides whose fault it is. Prints a line for
# the log and returns 1 if the fault is tapegrad's.
triage() {
    local binary=$1 input=$2 log=$2.log
    local status frame runs=1
    # Two cases need the input run again. A memory peak found by the RSS
    # check is reported with the allocations live at the time of the report.
    # The allocation behind the peak may be freed by then, so the report names
    # no frame of tapegrad or libhdf5. Some inputs crash HDF5 only on a second
    # read in the same process, after the first read has damaged HDF5's
    # internal state, as happens while fuzzing.
    for _ in 1 2 3; do
        set +e
        # Full stacks for leaks, which HDF5's frames otherwise cut short.
        ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 \
            "$binary" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
            -malloc_limit_mb="$malloc_mb" -runs="$runs" "$input" >"$log" 2>&1
        status=$?
        set -e
        frame=$(first_own_frame "$log")
        if [ $status -eq 0 ]; then
            [ $runs -eq 1 ] || break
            runs=3
        elif [ -n "$frame" ]; then
            break
        fi
    done
    local kind
    kind=$(grep -m1 -o -E 'SUMMARY: [A-Za-z]+: [A-Za-z-]+|ERROR: libFuzzer: [a-z-]+|contract broken' \
        "$log" | sed -E 's/^(SUMMARY|ERROR): //' || true)
    if [ $status -eq 0 ]; then
        # A hang or a memory peak may depend on the load of the machine; a
        # crash or a leak should not.
        case $(basename "$input") in
        timeout-* | slow-unit-* | oom-*)
            echo "  $(basename "$input"): slow or large once, but not when run again"
            return 0
            ;;
        esac
        echo "  $(basename "$input"): does not reproduce; rerun it by hand (log: $log)"
        return 1
    fi
    if [[ $frame == *libhdf5* ]]; then
        local where
        where=$(awk '/^ *#[0-9]+ 0x/ && / in H5/ { names = names sep $4; sep = " < "; if (++n == 2) exit }
            END { print names }' "$log")
        echo "  $(basename "$input"): known HDF5 limitation: ${kind:-crash} in ${where:-libhdf5}"
        return 0
    fi
    echo "  $(basename "$input"): ${kind:-crash} in tapegrad: ${frame:-see the log}"
    echo "    log: $log"
    return 1
}

failed=()
for target in "${targets[@]}"; do
    binary=$build/fuzz/fuzz_$target
    work=$build/runs/$target
    rm -rf "$work"
    mkdir -p "$work/artifacts"
    cp -r "fuzz/corpus/$target" "$work/corpus"
    echo "== fuzz $target for $seconds s"
    # HDF5 faults on malformed files within seconds, so the checkpoint target
    # runs in fork mode, which keeps fuzzing after a crash, a hang or an
    # out-of-memory. Every saved input is judged afterwards. The other
    # targets stop at their first fault.
    mode=()
    if [ "$target" = checkpoint ]; then
        mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    set +e
    "$binary" "${mode[@]}" -max_total_time="$seconds" -timeout="$timeout_s" \
        -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" -artifact_prefix="$work/artifacts/" "$work/corpus" \
        >"$work/fuzz.log" 2>&1
    status=$?
    set -e
    grep -E '^#[0-9]+: cov|^Done [0-9]+ runs' "$work/fuzz.log" | tail -1 || true
    target_failed=0
    found=0
    for input in "$work"/artifacts/*; do
        [ -f "$input" ] && [[ $input != *.log ]] || continue
        found=1
        triage "$binary" "$input" || target_failed=1
    done
    # With -ignore_crashes, fork mode exits with the status of its last job,
    # so a failed status without a saved input means libFuzzer itself failed.
    if [ $status -ne 0 ] && [ $found -eq 0 ]; then
        echo "  libFuzzer failed (status $status) without saving an input; see $work/fuzz.log"
        target_failed=1
    fi
    if [ $target_failed -ne 0 ]; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "Fuzzing found faults in tapegrad in: ${failed[*]}"
    echo "Fix each, then add its input under tests/data/fuzz_regressions/<target>/."
    exit 1
fi
echo "Fuzzing found no fault in tapegrad's code (${targets[*]}, $seconds s each)."
