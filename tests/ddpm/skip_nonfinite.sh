#!/usr/bin/env bash
# --skip-nonfinite: a step whose loss or gradient is not finite is skipped
# instead of stopping the run. The run ends with status 0 and logs how many
# steps it skipped. Every skipped step is marked in the log and has a
# non-finite loss in metrics.csv. A skipped step leaves the weights, the EMA
# and the optimizer unchanged.
source "$(dirname "$0")/lib.sh"
need_h5dump

# The weight decay of errors.sh's nonfinite_loss case: the weights overflow
# within about 10 steps, and every step after that has a NaN loss.
ddpm_ok train --data "$IDX_DATA" --out run "${TINY_MODEL[@]}" --steps 30 --lr 10 \
    --weight-decay 10 --ema 0.5 --eval-interval 5 --keep-last 10 --log-interval 1 --threads 1 \
    --skip-nonfinite
skipped=$(sed -n 's/^skipped \([0-9]*\) steps with a non-finite loss or gradient$/\1/p' \
    "$WORK/stdout")
if [ -z "$skipped" ] || [ "$skipped" -lt 1 ]; then
    fail "no count of skipped steps in the log: $(tail -n 5 "$WORK/stdout")"
fi
marked=$(grep -c '(skipped: not finite)$' "$WORK/stdout")
if [ "$marked" -ne "$skipped" ]; then
    fail "$marked log lines are marked as skipped, but the run reports $skipped"
fi
nan_rows=$(batch_rows run/metrics.csv | awk -F, '$3 ~ /nan|inf/' | wc -l)
if [ "$nan_rows" -ne "$skipped" ]; then
    fail "run/metrics.csv has $nan_rows rows with a non-finite loss, expected $skipped"
fi
# Steps 26 to 30 are all skipped, so the checkpoints at 25 and 30 hold the
# same state.
if ! batch_rows run/metrics.csv | awk -F, '$1 > 25 && $3 !~ /nan|inf/ {bad = 1} END {exit bad}'
then
    fail "a step after 25 was not skipped: $(batch_rows run/metrics.csv | tail -n 5)"
fi
expect_same_groups run/ckpt-00000025.h5 run/ckpt-00000030.h5 model ema optimizer
