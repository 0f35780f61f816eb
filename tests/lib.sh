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
    # A copy that rotation leaves alone, inside the folder so that both runs
    # continue the run there.
    cp run/ckpt-00000020.h5 run/start.h5
    "$program" train --out run --resume run/start.h5 --steps 100000000 --log-interval 1 \
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

    run_program "$program" train --out run --resume run/start.h5 --steps 30 --threads 1
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

# Prints a relative path of exactly $1 characters, made of folder names of
# at most 100 characters, below the limit of 255 of common file systems.
long_path() {
    local length=$1 path="" part
    part=$(printf 'd%.0s' $(seq 99))
    while [ $((${#path} + 100)) -lt "$length" ]; do
        path+="$part/"
    done
    printf '%s' "$path"
    printf 'e%.0s' $(seq $((length - ${#path})))
}

# Prints the step checkpoints of a folder, one name a line.
step_checkpoints() {
    (cd "$1" && ls ckpt-[0-9]*.h5 2>/dev/null)
}

# Fails unless the step checkpoints of folder $1 are exactly the names
# given after it.
expect_step_checkpoints() {
    local folder=$1
    shift
    local now expected
    now=$(step_checkpoints "$folder" | tr '\n' ' ')
    expected=$(printf '%s ' "$@")
    if [ "$now" != "$expected" ]; then
        fail "$folder holds the step checkpoints '$now', expected '$expected'"
    fi
}

# Fails unless the last per-step row of a metrics.csv is for step $2.
expect_last_batch_step() {
    local last
    last=$(batch_rows "$1" | tail -n 1 | cut -d, -f1)
    if [ "$last" != "$2" ]; then
        fail "the last per-step row of $1 is for step '$last', expected $2"
    fi
}

# Checks resuming within and across run folders with `program`, whose
# training flags (data and sizes) follow it: see resume_folders.sh.
expect_resume_folders() {
    local program=$1
    shift
    local common=("$@" --eval-interval 5 --ckpt-interval 5 --threads 1)
    program_ok "$program" train --out run --steps 24 --keep-last 3 "${common[@]}"
    expect_step_checkpoints run ckpt-00000015.h5 ckpt-00000020.h5 ckpt-00000024.h5
    local later
    later=$(cd run && md5sum ckpt-00000020.h5 ckpt-00000024.h5)

    # Going back to step 15 and on to 17 keeps 15 and the new 17, the two
    # newest up to step 17, and leaves 20 and 24 alone.
    program_ok "$program" train --out run --resume run/ckpt-00000015.h5 --steps 17 \
        --keep-last 2
    expect_output "run/ckpt-00000017.h5"
    expect_step_checkpoints run ckpt-00000015.h5 ckpt-00000017.h5 ckpt-00000020.h5 \
        ckpt-00000024.h5
    if [ "$(cd run && md5sum ckpt-00000020.h5 ckpt-00000024.h5)" != "$later" ]; then
        fail "the checkpoints after step 17 changed"
    fi
    expect_last_batch_step run/metrics.csv 17

    # Going on to 22 overwrites 20, and the two newest up to 22 stay.
    program_ok "$program" train --out run --resume run/ckpt-00000017.h5 --steps 22 \
        --keep-last 2
    expect_step_checkpoints run ckpt-00000020.h5 ckpt-00000022.h5 ckpt-00000024.h5
    if [ "$(cd run && md5sum ckpt-00000024.h5)" != "$(echo "$later" | tail -n 1)" ]; then
        fail "the checkpoint of step 24 changed"
    fi
    expect_last_batch_step run/metrics.csv 22

    # Another folder's checkpoint resumes into a new folder and into an
    # empty one, and leaves its own folder alone.
    local before
    before=$(snapshot run)
    program_ok "$program" train --out new --resume run/ckpt-00000022.h5 --steps 24
    expect_step_checkpoints new ckpt-00000024.h5
    mkdir empty
    program_ok "$program" train --out empty --resume run/ckpt-00000022.h5 --steps 23
    expect_step_checkpoints empty ckpt-00000023.h5
    expect_unchanged run "$before"

    # The same folder through another name, or a link to it, is the run's
    # own folder.
    ln -s new link
    program_ok "$program" train --out ./new/ --resume link/ckpt-00000024.h5 --steps 25
    program_ok "$program" train --out link --resume new/ckpt-00000025.h5 --steps 26
    # The run keeps its --keep-last of 2.
    expect_step_checkpoints new ckpt-00000025.h5 ckpt-00000026.h5
}

# Checks that `program` rejects a resume from another run's folder into a
# folder that contains a run (its checkpoints, or only its metrics.csv), and
# leaves both folders unchanged. Needs the program's copy_fixture_run.
expect_resume_into_other_run_rejected() {
    local program=$1
    copy_fixture_run other
    copy_fixture_run run
    local before_run before_other
    before_run=$(snapshot run)
    before_other=$(snapshot other)
    run_program "$program" train --out run --resume other/ckpt-best.h5 --steps 26
    expect_rejection 1 "$PROGRAM_NAME train: --out folder 'run' already holds another run \
(run/ckpt-00000020.h5), and --resume other/ckpt-best.h5 is from the folder 'other'; resume with \
--out other, or choose an empty --out"
    expect_unchanged run "$before_run"
    expect_unchanged other "$before_other"

    # A folder with only the metrics.csv of a run counts as a run too.
    mkdir early
    cp run/metrics.csv early/
    local before_early
    before_early=$(snapshot early)
    run_program "$program" train --out early --resume other/ckpt-00000020.h5 --steps 26
    expect_rejection 1 "$PROGRAM_NAME train: --out folder 'early' already holds another run \
(early/metrics.csv), and --resume other/ckpt-00000020.h5 is from the folder 'other'; resume with \
--out other, or choose an empty --out"
    expect_unchanged early "$before_early"
    expect_unchanged other "$before_other"
}

# Checks the --out path limit of `program`, trained with the fresh-run
# arguments that follow (data and model flags). Checkpoint paths may have at
# most 511 characters, so with the 16 of "/ckpt-00000005.h5" an --out path
# may have 494. Longer paths are rejected before anything is written.
expect_out_path_limit() {
    local program=$1
    shift
    local long
    long=$(long_path 495)
    mkdir -p "$long"
    run_program "$program" train --out "$long" "$@" --steps 5 --eval-interval 5
    expect_rejection 2 "$PROGRAM_NAME train: --out path '$long' has 495 characters, but a \
checkpoint path may have at most 511, so that ckpt-00000005.h5 fits after it; choose an --out \
path of at most 494 characters"
    if [ -n "$(ls -A "$long")" ]; then
        fail "files appeared in the rejected --out folder: $(ls -A "$long")"
    fi

    # A path far beyond the limit, and one that does not exist yet.
    long=$(long_path 3772)
    mkdir -p "$long"
    run_program "$program" train --out "$long" "$@" --steps 2600
    expect_rejection 2 "' has 3772 characters, but a checkpoint path may have at most 511, so \
that ckpt-00002600.h5 fits after it; choose an --out path of at most 494 characters"
    if [ -n "$(ls -A "$long")" ]; then
        fail "files appeared in the rejected --out folder: $(ls -A "$long")"
    fi
    long="$(dirname "$(long_path 495)")/new-$(long_path 99)"
    run_program "$program" train --out "$long" "$@" --steps 5 --eval-interval 5
    expect_rejection 2 "choose an --out path of at most 494 characters"
    if [ -e "$long" ]; then
        fail "the rejected --out folder was created"
    fi

    # A path at the limit trains and saves.
    long=$(long_path 494)
    mkdir -p "$(dirname "$long")"
    program_ok "$program" train --out "$long" "$@" --steps 5 --eval-interval 5
    if [ ! -f "$long/ckpt-00000005.h5" ]; then
        fail "the run at the path limit wrote no ckpt-00000005.h5: $(ls -A "$long")"
    fi
}
