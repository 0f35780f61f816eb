#!/usr/bin/env bash
# Trains the run that the rejection tests start from: 20 steps of the tiny
# patch Transformer with an EMA on tests/data/idx, with checkpoints at steps
# 10 and 20 and ckpt-best.h5, into $DDPM_FIXTURE. Registered as a CTest
# fixture (ddpm_fixture_run).
source "$(dirname "$0")/lib.sh"

: "${DDPM_FIXTURE:?DDPM_FIXTURE must name the fixture run folder}"
rm -rf "$DDPM_FIXTURE"
ddpm_ok train --data "$IDX_DATA" --out "$DDPM_FIXTURE" --steps 20 --eval-interval 10 --ema 0.9 \
    --threads 1 "${TINY[@]}"
for file in ckpt-00000010.h5 ckpt-00000020.h5 ckpt-best.h5 metrics.csv; do
    if [ ! -f "$DDPM_FIXTURE/$file" ]; then
        fail "the fixture run did not write $file; stdout: $(cat "$WORK/stdout")"
    fi
done
