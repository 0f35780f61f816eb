#!/usr/bin/env bash
# sample, eval and inspect on the fixture run: sampling continues the prompt
# with exactly --length characters, repeats itself for a seed at any thread
# count, and eval and inspect report the checkpoint's step and sizes.
source "$(dirname "$0")/lib.sh"

copy_fixture_run run
checkpoint=run/ckpt-00000020.h5

charlm_ok sample --checkpoint $checkpoint --prompt "KEEPER:" --length 40 --seed 5 --top-k 10
cp "$WORK/stdout" first.txt
# The prompt, 40 characters and a newline; the fixture text is ASCII.
if [ "$(head -c 7 first.txt)" != "KEEPER:" ]; then
    fail "the sample does not start with the prompt: $(cat first.txt)"
fi
bytes=$(wc -c <first.txt)
if [ "$bytes" -ne 48 ]; then
    fail "the sample has $bytes bytes, expected 7 + 40 + 1: $(cat first.txt)"
fi
charlm_ok sample --checkpoint $checkpoint --prompt "KEEPER:" --length 40 --seed 5 --top-k 10 \
    --threads 2
if ! cmp -s first.txt "$WORK/stdout"; then
    fail "the same seed gave another sample at 2 threads: '$(cat first.txt)' and" \
        "'$(cat "$WORK/stdout")'"
fi
charlm_ok sample --checkpoint $checkpoint --prompt "KEEPER:" --length 40 --seed 6 --top-k 10
if cmp -s first.txt "$WORK/stdout"; then
    fail "seeds 5 and 6 gave the same sample: $(cat first.txt)"
fi
# A prompt longer than the context of 16 characters keeps its last 16.
charlm_ok sample --checkpoint $checkpoint --prompt "The lamp is lit, and the tide comes in" \
    --length 5

charlm_ok eval --checkpoint $checkpoint --eval-iters 2
expect_output "step 20: train loss "
expect_output "(2 batches of 4 x 16 per split)"

charlm_ok inspect --checkpoint $checkpoint
expect_output "step         20 of 20"
expect_output "vocabulary 52 characters"
expect_output "transformer.wte.weight"
if ! grep -qE '^total +4400$' "$WORK/stdout"; then
    fail "inspect does not report 4400 parameters: $(cat "$WORK/stdout")"
fi
