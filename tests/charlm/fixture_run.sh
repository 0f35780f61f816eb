#!/usr/bin/env bash
# Trains the run that the rejection tests start from: 20 steps of the small
# model on harbour.txt, with checkpoints at steps 10 and 20 and ckpt-best.h5,
# into $CHARLM_FIXTURE. Registered as a CTest fixture (charlm_fixture_run).
source "$(dirname "$0")/lib.sh"

: "${CHARLM_FIXTURE:?CHARLM_FIXTURE must name the fixture run folder}"
rm -rf "$CHARLM_FIXTURE"
charlm_ok train --data "$TEXT" --out "$CHARLM_FIXTURE" --steps 20 --eval-interval 10 \
    --threads 1 "${SMALL[@]}"
for file in ckpt-00000010.h5 ckpt-00000020.h5 ckpt-best.h5 metrics.csv; do
    if [ ! -f "$CHARLM_FIXTURE/$file" ]; then
        fail "the fixture run did not write $file; stdout: $(cat "$WORK/stdout")"
    fi
done
