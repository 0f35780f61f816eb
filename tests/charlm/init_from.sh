#!/usr/bin/env bash
# --init-from loads weights only: the new run starts at step 0 from the
# checkpoint's weights, with a fresh optimizer and settings of its own.
source "$(dirname "$0")/lib.sh"
need_h5dump
need_h5py

copy_fixture_run source
origin=source/ckpt-00000020.h5

# The evaluation at step 0 saves ckpt-best.h5 before the first step. The one
# step taken here is SGD at lr 1e-12 on gradients clipped to norm 1e-30, far
# below a float32 rounding step, so it changes no weight. The final
# evaluation then cannot improve on step 0, and ckpt-best.h5 keeps the state
# at step 0. SGD with momentum has a state slot to check: the momentum buffer.
charlm_ok train --data "$TEXT" --init-from $origin --out still --steps 1 --threads 1 \
    --eval-iters 2 --final-eval-iters 2 --warmup-steps 0 --optimizer sgd --lr 1e-12 --min-lr 0 \
    --weight-decay 0 --grad-clip 1e-30
expect_output "steps        0 to 1"
charlm_ok inspect --checkpoint still/ckpt-best.h5
expect_output "step         0 of 1"
expect_same_groups $origin still/ckpt-best.h5 model vocab
if ! "$PYTHON" "$TESTS_DIR/h5edit.py" fresh-optimizer still/ckpt-best.h5 2>"$WORK/check"; then
    fail "the run does not start with a fresh optimizer: $(cat "$WORK/check")"
fi
# The origin does hold optimizer state, so the check above can fail.
if "$PYTHON" "$TESTS_DIR/h5edit.py" fresh-optimizer $origin 2>/dev/null; then
    fail "$origin has no optimizer state, so the test proves nothing"
fi

# An ordinary run from the same weights with another optimizer: six steps,
# counted from 0, one metrics row each.
charlm_ok train --data "$TEXT" --init-from $origin --out new --steps 6 --warmup-steps 1 \
    --eval-interval 3 --threads 1 --optimizer sgd --lr 0.01
expect_output "steps        0 to 6"
expect_output "optimizer    sgd"
rows=$(batch_rows new/metrics.csv | cut -d, -f1 | tr '\n' ' ')
if [ "$rows" != "1 2 3 4 5 6 " ]; then
    fail "new/metrics.csv has the steps '$rows', expected '1 2 3 4 5 6 '"
fi
charlm_ok inspect --checkpoint new/ckpt-00000006.h5
expect_output "step         6 of 6"
