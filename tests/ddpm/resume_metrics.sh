#!/usr/bin/env bash
# Resuming a finished run from an earlier checkpoint in the same folder
# replaces the rows of metrics.csv after that checkpoint, so the file again
# contains one row per step, and the run ends where it ended before.
source "$(dirname "$0")/lib.sh"
need_h5dump

common=("${TINY[@]}" --eval-interval 5 --ckpt-interval 5 --keep-last 3 --threads 1)
ddpm_ok train --data "$IDX_DATA" --out run --steps 24 "${common[@]}"
cp -r run first
# Checkpoints at 15, 20 and 24 remain; the run continues from step 15.
ddpm_ok train --out run --resume run/ckpt-00000015.h5

expect_same_groups first/ckpt-00000024.h5 run/ckpt-00000024.h5 model optimizer rng
expect_same_batch_rows first/metrics.csv run/metrics.csv
steps=$(batch_rows run/metrics.csv | cut -d, -f1 | tr '\n' ' ')
expected=$(seq 1 24 | tr '\n' ' ')
if [ "$steps" != "$expected" ]; then
    fail "run/metrics.csv has the steps '$steps', expected '$expected'"
fi
