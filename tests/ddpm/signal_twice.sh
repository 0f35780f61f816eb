#!/usr/bin/env bash
# A second SIGINT while ddpm is stopping on the first ends it at once, as the
# signal's default action, and leaves earlier checkpoints as they were. The
# first signal comes right after a step and its checkpoint, the second 0.05 s
# later. On one pixel per patch (784 tokens) a step of this model takes about
# 0.5 s, so both arrive within one step.
source "$(dirname "$0")/lib.sh"

big=(--patch 1 --width 64 --depth 2 --heads 4 --t-freq-dim 16 --t-hidden 16 --timesteps 50
     --batch-size 5 --val-count 1 --log-interval 1 --threads 1 --eval-interval 1000
     --ckpt-interval 1 --keep-last 1000)
"$DDPM" train --data "$IDX_DATA" --out run --steps 100000 "${big[@]}" >"$WORK/stdout" \
    2>"$WORK/stderr" &
pid=$!
for _ in $(seq 1200); do
    if grep -q '^checkpoint run/ckpt-00000001.h5' "$WORK/stdout"; then
        break
    fi
    if ! kill -0 $pid 2>/dev/null; then
        fail "ddpm exited before the signals; stderr: $(cat "$WORK/stderr")"
    fi
    sleep 0.02
done
before=$(md5sum run/ckpt-00000001.h5)
# Two signals sent together would merge into one pending signal.
kill -INT $pid
sleep 0.05
kill -INT $pid
wait $pid
STATUS=$?
# A shell reports death by signal N as status 128 + N; SIGINT is 2.
expect_status 130
if grep -qF "stopped by SIGINT" "$WORK/stdout"; then
    fail "ddpm stopped cleanly, so the second signal did not end it at once"
fi
if [ "$(md5sum run/ckpt-00000001.h5)" != "$before" ]; then
    fail "run/ckpt-00000001.h5 changed"
fi
ddpm_ok inspect --checkpoint run/ckpt-00000001.h5
