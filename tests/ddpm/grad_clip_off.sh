#!/usr/bin/env bash
# --grad-clip 0 turns clipping off but still logs the gradient norm; every
# step is taken and none is reported as not finite.
source "$(dirname "$0")/lib.sh"

ddpm_ok train --data "$IDX_DATA" --out run "${TINY[@]}" --steps 6 --grad-clip 0 --threads 1
rows=$(batch_rows run/metrics.csv | wc -l)
if [ "$rows" -ne 6 ]; then
    fail "run/metrics.csv has $rows per-step rows, expected 6"
fi
# Column 5 is the gradient norm: a positive number on every row.
bad=$(batch_rows run/metrics.csv | awk -F, '!($5 > 0)')
if [ -n "$bad" ]; then
    fail "rows without a positive gradient norm: $bad"
fi
if grep -q "not finite" "$WORK/stdout" "$WORK/stderr"; then
    fail "a step was reported as not finite: $(cat "$WORK/stdout" "$WORK/stderr")"
fi
