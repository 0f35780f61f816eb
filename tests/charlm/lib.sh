# Helpers shared by the charlm program tests, sourced by each script.
#
# CTest sets the environment (see tests/CMakeLists.txt):
#   CHARLM          the charlm program
#   CHARLM_DATA     tests/data/charlm, with the text harbour.txt
#   CHARLM_FIXTURE  a run that the test charlm_fixture_run trains to step 20
#   H5DUMP          h5dump from hdf5-tools
#   PYTHON          a Python 3 that can import h5py
# A script exits 0 on success, 1 on a failed check and 77 when it cannot run
# here (CTest reports 77 as skipped).

set -uo pipefail

: "${CHARLM:?CHARLM must name the charlm program; run the tests through ctest}"
: "${CHARLM_DATA:?CHARLM_DATA must name tests/data/charlm; run the tests through ctest}"
TEXT="$CHARLM_DATA/harbour.txt"
# The folder of these scripts and of h5edit.py, found before the scripts
# change directory.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The model and run sizes of every test: one block of width 16 on batches of
# 4 x 16 characters, a few milliseconds per step. SMALL adds short final
# evaluations and quiet logs to SMALL_MODEL.
SMALL_MODEL=(--n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --eval-iters 2
             --warmup-steps 2)
SMALL=("${SMALL_MODEL[@]}" --final-eval-iters 2 --log-interval 1000)

# One scratch folder per test, removed on exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/charlm-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# Runs charlm with the given arguments. Leaves the exit status in STATUS and
# the output in $WORK/stdout and $WORK/stderr.
run_charlm() {
    "$CHARLM" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    STATUS=$?
}

# Runs charlm and fails the test unless it exits with status 0.
charlm_ok() {
    run_charlm "$@"
    if [ "$STATUS" -ne 0 ]; then
        fail "charlm $* exited with status $STATUS; stderr: $(cat "$WORK/stderr")"
    fi
}

expect_status() {
    if [ "$STATUS" -ne "$1" ]; then
        fail "expected exit status $1, got $STATUS; stderr: $(cat "$WORK/stderr")"
    fi
}

# Fails unless stderr contains the text (a fixed string).
expect_error() {
    if ! grep -qF -- "$1" "$WORK/stderr"; then
        fail "stderr does not contain '$1'; stderr: $(cat "$WORK/stderr")"
    fi
}

# Fails unless stdout contains the text (a fixed string).
expect_output() {
    if ! grep -qF -- "$1" "$WORK/stdout"; then
        fail "stdout does not contain '$1'; stdout: $(head -c 2000 "$WORK/stdout")"
    fi
}

# Expects a rejection: the exit status and the key words of the message.
expect_rejection() {
    expect_status "$1"
    expect_error "$2"
}

# Prints the name and checksum of every file below a folder, sorted, so that
# two snapshots are equal exactly when no file was added, removed or changed.
snapshot() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r md5sum)
}

# Fails unless the folder matches a snapshot taken earlier.
expect_unchanged() {
    local now
    now=$(snapshot "$1")
    if [ "$now" != "$2" ]; then
        fail "files in $1 changed:
$(diff <(echo "$2") <(echo "$now"))"
    fi
}

need_h5dump() {
    if [ -z "${H5DUMP:-}" ] || [ ! -x "$H5DUMP" ]; then
        skip "h5dump (hdf5-tools) is missing"
    fi
}

need_h5py() {
    if [ -z "${PYTHON:-}" ] || ! "$PYTHON" -c 'import h5py' 2>/dev/null; then
        skip "${PYTHON:-python3} cannot import h5py (python3-h5py)"
    fi
}

# Prints one HDF5 group with floats in exact hexadecimal (%a), without the
# first line, which contains the file name.
dump_group() {
    "$H5DUMP" -m '%a' -g "/$2" "$1" | tail -n +2
}

# Fails unless the groups are bitwise identical in both checkpoints.
expect_same_groups() {
    local a=$1 b=$2
    shift 2
    for group in "$@"; do
        if ! diff <(dump_group "$a" "$group") <(dump_group "$b" "$group") >"$WORK/group.diff"; then
            fail "group /$group differs between $a and $b:
$(head -n 20 "$WORK/group.diff")"
        fi
    done
}

# Prints step, loss, lr and gradient norm of each training step in a
# metrics.csv (ms_per_step and tokens_per_s vary from run to run).
batch_rows() {
    grep ',batch,' "$1" | cut -d, -f1-5
}

expect_same_batch_rows() {
    if ! diff <(batch_rows "$1") <(batch_rows "$2") >"$WORK/metrics.diff"; then
        fail "the per-step rows of $1 and $2 differ:
$(head -n 20 "$WORK/metrics.diff")"
    fi
}

# Copies the fixture run (trained to step 20 by charlm_fixture_run) to $1.
copy_fixture_run() {
    : "${CHARLM_FIXTURE:?CHARLM_FIXTURE must name the fixture run folder}"
    if [ ! -f "$CHARLM_FIXTURE/ckpt-00000020.h5" ]; then
        fail "the fixture run $CHARLM_FIXTURE/ckpt-00000020.h5 is missing; charlm_fixture_run" \
            "must pass first"
    fi
    cp -r "$CHARLM_FIXTURE" "$1"
}
