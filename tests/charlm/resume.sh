#!/usr/bin/env bash
# Resume is exact: a run stopped after K steps and resumed to N ends with a
# checkpoint whose model/, optimizer/ and rng/ groups are bitwise those of a
# run that trained N steps without a stop, and metrics.csv contains the same
# per-step losses, learning rates and gradient norms.
#
# Usage: resume.sh OPTIMIZER STRAIGHT_THREADS FIRST_THREADS RESUME_THREADS
# The straight run uses STRAIGHT_THREADS; the stopped run trains its first K
# steps with FIRST_THREADS and the rest with RESUME_THREADS.
#
# K = 7 lies between checkpoints and evaluations (every 5 steps), and the
# first run ends with a final evaluation of another length than the straight
# run's, so neither may leave state that changes the training. Dropout 0.1
# makes the dropout generator part of the state.
source "$(dirname "$0")/lib.sh"
need_h5dump

optimizer=$1
straight_threads=$2
first_threads=$3
resume_threads=$4
N=24
K=7
common=("${SMALL_MODEL[@]}" --optimizer "$optimizer" --dropout 0.1 --eval-interval 5
        --lr-decay-steps $N)

charlm_ok train --data "$TEXT" --out straight --steps $N --threads "$straight_threads" \
    "${common[@]}" --final-eval-iters 2
charlm_ok train --data "$TEXT" --out stopped --steps $K --threads "$first_threads" "${common[@]}" \
    --final-eval-iters 3
charlm_ok train --out stopped --resume stopped/ckpt-0000000$K.h5 --steps $N \
    --threads "$resume_threads"
expect_output "steps        $K to $N"

final=ckpt-000000$N.h5
expect_same_groups straight/$final stopped/$final model optimizer rng
expect_same_batch_rows straight/metrics.csv stopped/metrics.csv
rows=$(batch_rows stopped/metrics.csv | wc -l)
if [ "$rows" -ne $N ]; then
    fail "stopped/metrics.csv has $rows per-step rows, expected $N"
fi

# The comparison means something only if training moved the weights.
if diff -q <(dump_group stopped/ckpt-0000000$K.h5 model) <(dump_group stopped/$final model) \
    >/dev/null; then
    fail "the model at step $N equals the model at step $K; training did not change it"
fi
