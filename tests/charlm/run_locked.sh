#!/usr/bin/env bash
# Two trainings in one --out folder: while one process trains there, a
# second that resumes into the same folder is rejected with a message that
# names the first, and the first trains on undisturbed.
source "$(dirname "$0")/lib.sh"

copy_fixture_run run
far=100000
"$CHARLM" train --out run --resume run/ckpt-00000020.h5 --steps $far --log-interval 1 \
    --threads 1 >"$WORK/first.out" 2>"$WORK/first.err" &
first=$!
for _ in $(seq 600); do
    if grep -q '^step  *25/' "$WORK/first.out"; then
        break
    fi
    if ! kill -0 $first 2>/dev/null; then
        fail "the first run exited early; stderr: $(cat "$WORK/first.err")"
    fi
    sleep 0.05
done

run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --threads 1
expect_rejection 1 "charlm train: another process (id $first) is training in --out folder \
'run'; wait for it to finish or choose another --out"

kill -TERM $first
wait $first
STATUS=$?
if [ $STATUS -ne 0 ]; then
    fail "the first run exited with status $STATUS after SIGTERM; stderr: $(cat "$WORK/first.err")"
fi
if ! grep -q "stopped by SIGTERM" "$WORK/first.out"; then
    fail "the first run did not stop cleanly: $(tail -3 "$WORK/first.out")"
fi

# With the first run gone, the folder can be trained in again.
step=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\) of .*/\1/p' "$WORK/first.out")
charlm_ok train --out run --resume "$(printf 'run/ckpt-%08d.h5' "$step")" --steps $((step + 2)) \
    --threads 1
