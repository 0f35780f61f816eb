# Helpers of the charlm program tests, sourced by each script. The helpers
# that the programs share (fail, expect_rejection, snapshot, ...) come from
# tests/lib.sh.
#
# CTest sets the environment (see tests/CMakeLists.txt):
#   CHARLM          the charlm program
#   CHARLM_DATA     tests/data/charlm, with the text harbour.txt
#   CHARLM_FIXTURE  a run that the test charlm_fixture_run trains to step 20
#   H5DUMP          h5dump from hdf5-tools
#   PYTHON          a Python 3 that can import h5py
# A script exits 0 on success, 1 on a failed check and 77 when it cannot run
# here (CTest reports 77 as skipped).

: "${CHARLM:?CHARLM must name the charlm program; run the tests through ctest}"
: "${CHARLM_DATA:?CHARLM_DATA must name tests/data/charlm; run the tests through ctest}"
TEXT="$CHARLM_DATA/harbour.txt"
# The folder of these scripts and of h5edit.py, found before the scripts
# change directory.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PROGRAM_NAME=charlm
source "$TESTS_DIR/../lib.sh"

# The model and run sizes of every test: one block of width 16 on batches of
# 4 x 16 characters, a few milliseconds per step. SMALL adds short final
# evaluations and quiet logs to SMALL_MODEL.
SMALL_MODEL=(--n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --eval-iters 2
             --warmup-steps 2)
SMALL=("${SMALL_MODEL[@]}" --final-eval-iters 2 --log-interval 1000)

# Runs charlm with the given arguments. Leaves the exit status in STATUS and
# the output in $WORK/stdout and $WORK/stderr.
run_charlm() {
    run_program "$CHARLM" "$@"
}

# Runs charlm and fails the test unless it exits with status 0.
charlm_ok() {
    program_ok "$CHARLM" "$@"
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
