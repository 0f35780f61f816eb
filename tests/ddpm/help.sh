#!/usr/bin/env bash
# --help after each subcommand prints, on stdout with status 0, every flag of
# the subcommand on one line with its default (or [required]), and nothing
# else is run. ddpm --help lists the subcommands.
source "$(dirname "$0")/lib.sh"

train_flags=(data out steps batch-size arch patch width depth heads pos gelu hidden t-freq-dim
    t-hidden schedule timesteps beta-start beta-end lr lr-decay min-lr warmup-steps
    lr-decay-steps beta1 beta2 eps weight-decay grad-clip ema val-count seed threads
    eval-interval log-interval ckpt-interval keep-last resume init-from skip-nonfinite)
sample_flags=(checkpoint sampler steps eta variance clip-x0 ema count batch columns seed out
    threads)
eval_flags=(checkpoint data val-count batch noise-seed threads)
inspect_flags=(checkpoint)

# Checks the help of one subcommand against its expected flags.
check_help() {
    local command=$1
    shift
    run_ddpm "$command" --help
    expect_status 0
    expect_output "usage: ddpm $command [options]"
    if [ -s "$WORK/stderr" ]; then
        fail "ddpm $command --help wrote to stderr: $(cat "$WORK/stderr")"
    fi
    for flag in "$@"; do
        local line
        line=$(grep -E -- "^  --(\[no-\])?$flag( |$)" "$WORK/stdout")
        if [ -z "$line" ]; then
            fail "ddpm $command --help does not list --$flag"
        fi
        if ! echo "$line" | grep -qE '\[(default: .+|required)\]$'; then
            fail "ddpm $command --help gives --$flag no default: $line"
        fi
    done
    # One line per flag plus --help: no flag is listed that the test does not know.
    local listed
    listed=$(grep -cE '^  --' "$WORK/stdout")
    if [ "$listed" -ne $(($# + 1)) ]; then
        fail "ddpm $command --help lists $listed options, expected $# and --help:
$(cat "$WORK/stdout")"
    fi
}

check_help train "${train_flags[@]}"
expect_output "--steps N                optimizer steps to train to [default: 2000 steps]"
expect_output "--arch C                 denoiser: patch Transformer or MLP (one of: dit mlp) \
[default: dit]"
expect_output "--lr X                   peak learning rate [default: 0.001]"
expect_output "--ema X                  decay of the weights' moving average, below 1 (0: off) \
[default: 0]"
expect_output "--[no-]skip-nonfinite    skip steps whose loss or gradient is not finite instead \
of stopping [default: off]"
check_help sample "${sample_flags[@]}"
expect_output "--sampler C              DDIM over --steps, or ancestral DDPM over all diffusion \
steps (one of: ddim ddpm) [default: ddim]"
expect_output "--out S                  PNG to write; the raw samples go to the same path with .h5 \
[default: samples.png]"
check_help eval "${eval_flags[@]}"
check_help inspect "${inspect_flags[@]}"

# --help wins over everything else on the line: no work starts.
run_ddpm train --data missing --out out --help
expect_status 0
expect_output "usage: ddpm train [options]"
if [ -e out ]; then
    fail "ddpm train --help created the --out folder"
fi
run_ddpm sample --checkpoint missing.h5 --help
expect_status 0
expect_output "usage: ddpm sample [options]"
if [ -e samples.png ]; then
    fail "ddpm sample --help wrote samples.png"
fi

run_ddpm --help
expect_status 0
for command in train sample eval inspect; do
    if ! grep -qE "^  $command " "$WORK/stdout"; then
        fail "ddpm --help does not list the command $command"
    fi
done
