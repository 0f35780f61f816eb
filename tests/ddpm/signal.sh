#!/usr/bin/env bash
# A stop signal during training: ddpm finishes the current step, writes a
# checkpoint, prints where it is and exits with status 0. Resuming from that
# checkpoint trains exactly as a run that never stopped.
#
# Usage: signal.sh INT|TERM
source "$(dirname "$0")/lib.sh"
need_h5dump

signal=$1
far=100000000
common=("${TINY_MODEL[@]}" --ema 0.9 --threads 1 --eval-interval $far)

# A relative --data path, so that the resume below, from another folder,
# needs the absolute path that the checkpoint stores.
cp -r "$IDX_DATA" idx

# Start a long run and wait until it has taken a few steps.
"$DDPM" train --data idx --out run --steps $far --log-interval 1 "${common[@]}" \
    >"$WORK/stdout" 2>"$WORK/stderr" &
pid=$!
for _ in $(seq 600); do
    if grep -q '^step  *5/' "$WORK/stdout"; then
        break
    fi
    if ! kill -0 $pid 2>/dev/null; then
        fail "ddpm exited before the signal; stderr: $(cat "$WORK/stderr")"
    fi
    sleep 0.05
done
kill -"$signal" $pid
wait $pid
STATUS=$?
expect_status 0

# "stopped by SIGINT after step S of N; checkpoint written to run/ckpt-S.h5; ..."
expect_output "stopped by SIG$signal after step "
line=$(grep "stopped by SIG$signal" "$WORK/stdout")
step=$(echo "$line" | sed -n 's/.* after step \([0-9]*\) of .*/\1/p')
if [ -z "$step" ] || [ "$step" -lt 5 ]; then
    fail "cannot read a step of at least 5 from: $line"
fi
checkpoint=$(printf 'run/ckpt-%08d.h5' "$step")
expect_output "checkpoint written to $checkpoint; continue with: ddpm train --out run --resume \
$checkpoint"
if [ ! -f "$checkpoint" ]; then
    fail "$checkpoint is missing after: $line"
fi
rows=$(batch_rows run/metrics.csv | wc -l)
if [ "$rows" -ne "$step" ]; then
    fail "run/metrics.csv has $rows per-step rows, expected $step"
fi
ddpm_ok inspect --checkpoint "$checkpoint"
expect_output "step         $step of $far"

# Resume to 5 steps further, from inside the run folder, and compare with a
# run that never stopped.
end=$((step + 5))
cd run || fail "cannot enter the run folder"
ddpm_ok train --out . --resume "${checkpoint#run/}" --steps $end --threads 1
cd "$WORK" || fail "cannot return to $WORK"
final=$(printf 'ckpt-%08d.h5' "$end")
ddpm_ok train --data idx --out straight --steps $end "${common[@]}"
expect_same_groups straight/$final run/$final model ema optimizer rng
expect_same_batch_rows straight/metrics.csv run/metrics.csv
