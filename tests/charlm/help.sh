#!/usr/bin/env bash
# --help after each subcommand prints, on stdout with status 0, every flag of
# the subcommand on one line with its default (or [required]), and nothing
# else is run. charlm --help lists the subcommands.
source "$(dirname "$0")/lib.sh"

train_flags=(data out steps batch-size block-size n-layer n-head n-embd pos pos-combine pos-dim
    gelu bias tie-weights dropout optimizer lr min-lr warmup-steps lr-decay-steps beta1 beta2 eps
    weight-decay decay-embeddings momentum nesterov grad-clip val-fraction seed threads
    eval-interval eval-iters final-eval-iters log-interval ckpt-interval keep-last resume
    init-from skip-nonfinite)
sample_flags=(checkpoint prompt length temperature top-k seed threads)
eval_flags=(checkpoint data eval-iters batch-size seed threads)
inspect_flags=(checkpoint)

# Checks the help of one subcommand against its expected flags.
check_help() {
    local command=$1
    shift
    run_charlm "$command" --help
    expect_status 0
    expect_output "usage: charlm $command [options]"
    if [ -s "$WORK/stderr" ]; then
        fail "charlm $command --help wrote to stderr: $(cat "$WORK/stderr")"
    fi
    for flag in "$@"; do
        local line
        line=$(grep -E -- "^  --(\[no-\])?$flag( |$)" "$WORK/stdout")
        if [ -z "$line" ]; then
            fail "charlm $command --help does not list --$flag"
        fi
        if ! echo "$line" | grep -qE '\[(default: .+|required)\]$'; then
            fail "charlm $command --help gives --$flag no default: $line"
        fi
    done
    # One line per flag plus --help: no flag is listed that the test does not know.
    local listed
    listed=$(grep -cE '^  --' "$WORK/stdout")
    if [ "$listed" -ne $(($# + 1)) ]; then
        fail "charlm $command --help lists $listed options, expected $# and --help:
$(cat "$WORK/stdout")"
    fi
}

check_help train "${train_flags[@]}"
expect_output "--steps N                optimizer steps to train to [default: 2000 steps]"
expect_output "--[no-]bias              biases in linear and LayerNorm layers [default: on]"
expect_output "--optimizer C            optimizer (one of: adamw adam sgd) [default: adamw]"
expect_output "--lr X                   peak learning rate [default: 0.001]"
check_help sample "${sample_flags[@]}"
expect_output "[default: \\n]"
expect_output "--temperature X"
# A default of 1 takes the singular unit.
expect_output "--threads N              OpenMP threads (0: all cores) [default: 1 thread]"
check_help eval "${eval_flags[@]}"
check_help inspect "${inspect_flags[@]}"

# --help wins over everything else on the line: no work starts.
run_charlm train --data missing.txt --out out --help
expect_status 0
expect_output "usage: charlm train [options]"
if [ -e out ]; then
    fail "charlm train --help created the --out folder"
fi

run_charlm --help
expect_status 0
for command in train sample eval inspect; do
    if ! grep -qE "^  $command " "$WORK/stdout"; then
        fail "charlm --help does not list the command $command"
    fi
done
