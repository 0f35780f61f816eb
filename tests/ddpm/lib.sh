# Helpers of the ddpm program tests, sourced by each script. The helpers
# that the programs share (fail, expect_rejection, snapshot, ...) come from
# tests/lib.sh.
#
# CTest sets the environment (see tests/CMakeLists.txt):
#   DDPM          the ddpm program
#   DDPM_DATA     tests/data/ddpm, with the broken and other-size IDX folders
#   IDX_DATA      tests/data/idx, 5 training and 3 test images of 28 x 28
#   DDPM_FIXTURE  a run that the test ddpm_fixture_run trains to step 20
#   H5DUMP        h5dump from hdf5-tools
#   PYTHON        a Python 3 that can import h5py

: "${DDPM:?DDPM must name the ddpm program; run the tests through ctest}"
: "${DDPM_DATA:?DDPM_DATA must name tests/data/ddpm; run the tests through ctest}"
: "${IDX_DATA:?IDX_DATA must name tests/data/idx; run the tests through ctest}"
# The folder of these scripts, found before the scripts change directory.
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Edits checkpoints with h5py (set-attr, widen).
EDIT="$TESTS_DIR/../charlm/h5edit.py"

PROGRAM_NAME=ddpm
source "$TESTS_DIR/../lib.sh"

# The model and run sizes of every test: a patch Transformer of one block of
# width 16 on 7 x 7 patches, and 50 diffusion steps. It trains on batches of 4
# of the 5 training images and validates on 3 images, in well under a
# millisecond per step.
TINY_MODEL=(--patch 7 --width 16 --depth 1 --heads 2 --t-freq-dim 16 --t-hidden 16
            --timesteps 50 --batch-size 4 --val-count 3)
TINY=("${TINY_MODEL[@]}" --log-interval 1000)

# Runs ddpm with the given arguments. Leaves the exit status in STATUS and
# the output in $WORK/stdout and $WORK/stderr.
run_ddpm() {
    run_program "$DDPM" "$@"
}

# Runs ddpm and fails the test unless it exits with status 0.
ddpm_ok() {
    program_ok "$DDPM" "$@"
}

# Copies the fixture run (trained to step 20 by ddpm_fixture_run) to $1.
copy_fixture_run() {
    : "${DDPM_FIXTURE:?DDPM_FIXTURE must name the fixture run folder}"
    if [ ! -f "$DDPM_FIXTURE/ckpt-00000020.h5" ]; then
        fail "the fixture run $DDPM_FIXTURE/ckpt-00000020.h5 is missing; ddpm_fixture_run must" \
            "pass first"
    fi
    cp -r "$DDPM_FIXTURE" "$1"
}
