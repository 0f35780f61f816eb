# Helpers shared by the shell tests of the command-line programs
# (tests/charlm and tests/ddpm), sourced by each program's lib.sh after it
# sets PROGRAM_NAME. A script exits 0 on success, 1 on a failed check and 77
# when it cannot run here (CTest reports 77 as skipped).
#
# Optional environment, set by CTest (see tests/CMakeLists.txt):
#   H5DUMP   h5dump from hdf5-tools
#   PYTHON   a Python 3 that can import h5py

set -uo pipefail

: "${PROGRAM_NAME:?PROGRAM_NAME must name the program under test}"

# One scratch folder per test, removed on exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$PROGRAM_NAME-test.XXXXXX")
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

# Runs a program with the given arguments. Leaves the exit status in STATUS
# and the output in $WORK/stdout and $WORK/stderr.
run_program() {
    "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    STATUS=$?
}

# Runs a program and fails the test unless it exits with status 0.
program_ok() {
    run_program "$@"
    if [ "$STATUS" -ne 0 ]; then
        fail "$* exited with status $STATUS; stderr: $(cat "$WORK/stderr")"
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

# Runs a program with stdout on /dev/full, where every write fails with
# ENOSPC, and expects exit status 1 and the message of a failed write. The
# output goes to $WORK/stderr, as with run_program. Skips without /dev/full.
# Usage: expect_stdout_write_failure COMMAND [ARG...]
expect_stdout_write_failure() {
    if [ ! -c /dev/full ]; then
        skip "/dev/full is missing, so no stdout write can be made to fail"
    fi
    "$@" >/dev/full 2>"$WORK/stderr"
    STATUS=$?
    expect_rejection 1 "$PROGRAM_NAME: writing to standard output failed: No space left on device"
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
# metrics.csv (the timing columns vary from run to run).
batch_rows() {
    grep ',batch,' "$1" | cut -d, -f1-5
}

expect_same_batch_rows() {
    if ! diff <(batch_rows "$1") <(batch_rows "$2") >"$WORK/metrics.diff"; then
        fail "the per-step rows of $1 and $2 differ:
$(head -n 20 "$WORK/metrics.diff")"
    fi
}

# Runs a command with the given arguments as a user who cannot write to a
# folder of mode 555, and leaves STATUS, $WORK/stdout and $WORK/stderr as
# run_program does. Root ignores permission bits, so as root the command runs
# as the user nobody through setpriv; the test is skipped when that is not
# possible, or when nobody cannot run the command or read each FILE.
# Usage: run_unprivileged [FILE...] -- COMMAND [ARG...]
run_unprivileged() {
    local needed=()
    while [ "$1" != "--" ]; do
        needed+=("$1")
        shift
    done
    shift
    local runner=()
    if [ "$(id -u)" -eq 0 ]; then
        if ! command -v setpriv >/dev/null; then
            skip "running as root without setpriv, so no folder is read-only to the program"
        fi
        runner=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
        chmod 755 "$WORK"
        if ! "${runner[@]}" test -x "$1"; then
            skip "the user nobody cannot run $1"
        fi
        for file in "${needed[@]}"; do
            if ! "${runner[@]}" test -r "$file"; then
                skip "the user nobody cannot read $file"
            fi
        done
    fi
    "${runner[@]}" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
    STATUS=$?
}

# Checks the run-folder lock of `program`. While one process trains in the
# folder run, resumed from the fixture run, a second that resumes into the
# same folder must be rejected with a message naming the first. Once the
# first stops on SIGTERM, the folder must accept a run again. Needs the
# program's copy_fixture_run.
expect_run_folder_locked() {
    local program=$1
    copy_fixture_run run
    cp run/ckpt-00000020.h5 start.h5
    "$program" train --out run --resume start.h5 --steps 100000000 --log-interval 1 \
        --threads 1 >"$WORK/first.out" 2>"$WORK/first.err" &
    local first=$!
    for _ in $(seq 600); do
        if grep -q '^step  *25/' "$WORK/first.out"; then
            break
        fi
        if ! kill -0 $first 2>/dev/null; then
            fail "the first run exited early; stderr: $(cat "$WORK/first.err")"
        fi
        sleep 0.05
    done

    run_program "$program" train --out run --resume start.h5 --steps 30 --threads 1
    expect_rejection 1 "$PROGRAM_NAME train: another process (id $first) is training in --out \
folder 'run'; wait for it to finish or choose another --out"

    kill -TERM $first
    wait $first
    STATUS=$?
    if [ $STATUS -ne 0 ]; then
        fail "the first run exited with status $STATUS after SIGTERM; stderr:" \
            "$(cat "$WORK/first.err")"
    fi
    if ! grep -q "stopped by SIGTERM" "$WORK/first.out"; then
        fail "the first run did not stop cleanly: $(tail -3 "$WORK/first.out")"
    fi

    # With the first run gone, the folder can be trained in again.
    local step
    step=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\) of .*/\1/p' "$WORK/first.out")
    program_ok "$program" train --out run --resume "$(printf 'run/ckpt-%08d.h5' "$step")" \
        --steps $((step + 2)) --threads 1
}
