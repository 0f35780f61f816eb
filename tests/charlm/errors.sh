#!/usr/bin/env bash
# Bad input and failures: charlm rejects each with a clear message and a
# non-zero exit status, and writes nothing. docs/errors.md lists every case
# with its message; each row names the CTest test charlm_error_<case> that
# runs the function case_<case> below.
#
# Usage: errors.sh CASE
source "$(dirname "$0")/lib.sh"

EDIT="$TESTS_DIR/h5edit.py"

# Flag errors come before any work: the --out folder is not even created.
expect_no_out() {
    if [ -e out ]; then
        fail "the --out folder was created although the command line was rejected"
    fi
}

# ---- Flags --------------------------------------------------------------------

case_unknown_flag() {
    run_charlm train --data "$TEXT" --out out --bogus 1
    expect_rejection 2 "charlm train: unknown option '--bogus'; run 'charlm train --help' for the \
list"
    expect_no_out
}

case_missing_value() {
    run_charlm train --data "$TEXT" --out
    expect_rejection 2 "charlm train: --out needs a value"
}

case_non_numeric_value() {
    run_charlm train --data "$TEXT" --out out --steps abc
    expect_rejection 2 "charlm train: invalid value 'abc' for --steps; expected an integer"
    expect_no_out
    run_charlm train --data "$TEXT" --out out --lr fast
    expect_rejection 2 "charlm train: invalid value 'fast' for --lr; expected a finite number"
    expect_no_out
}

case_zero_size() {
    run_charlm train --data "$TEXT" --out out --batch-size 0
    expect_rejection 2 "charlm train: --batch-size 0 is out of range; expected 1 to 65536"
    expect_no_out
    run_charlm train --data "$TEXT" --out out --steps 0
    expect_rejection 2 "charlm train: --steps 0 is out of range; expected 1 to 1000000000"
    expect_no_out
}

case_negative_size() {
    run_charlm train --data "$TEXT" --out out --n-embd -16
    expect_rejection 2 "charlm train: --n-embd -16 is out of range; expected 1 to 65536"
    expect_no_out
}

case_heads_do_not_divide_width() {
    run_charlm train --data "$TEXT" --out out --n-embd 15 --n-head 2 --steps 5 --warmup-steps 1
    expect_rejection 2 "charlm train: model width 15 is not divisible by n_head 2"
    expect_no_out
}

case_missing_out() {
    run_charlm train --data "$TEXT"
    expect_rejection 2 "charlm train: --out is required; run 'charlm train --help' for usage"
}

case_missing_data_flag() {
    run_charlm train --out out "${SMALL[@]}"
    expect_rejection 2 "charlm train: --data is required; give the text file to train on"
    expect_no_out
}

case_resume_with_init_from() {
    run_charlm train --out out --resume a.h5 --init-from b.h5
    expect_rejection 2 "charlm train: --resume and --init-from exclude each other"
    expect_no_out
}

case_warmup_past_decay() {
    # 50 steps with the default warmup of 100 steps.
    run_charlm train --data "$TEXT" --out out --steps 50
    expect_rejection 2 "charlm train: the cosine decay ends at step 50 (--lr-decay-steps, or \
--steps when it is 0), which must be after the warmup of --warmup-steps 100"
    expect_no_out
    run_charlm train --data "$TEXT" --out out "${SMALL[@]}" --min-lr 0.1
    expect_rejection 2 "charlm train: --min-lr 0.1 must not exceed --lr 0.001; lower --min-lr"
    expect_no_out
}

case_repeated_flag() {
    run_charlm train --data "$TEXT" --out out --steps 5 --steps 6
    expect_rejection 2 "charlm train: --steps is given more than once"
    expect_no_out
}

case_unknown_choice() {
    run_charlm train --data "$TEXT" --out out --optimizer lion
    expect_rejection 2 "charlm train: invalid value 'lion' for --optimizer; expected one of: adamw \
adam sgd"
    expect_no_out
}

case_switch_with_value() {
    run_charlm train --data "$TEXT" --out out --bias=1
    expect_rejection 2 "charlm train: --bias takes no value; use --bias or --no-bias"
    expect_no_out
}

case_stray_argument() {
    run_charlm train "$TEXT" --out out
    expect_rejection 2 "charlm train: unexpected argument '$TEXT'; options start with --"
    expect_no_out
}

case_unknown_command() {
    run_charlm fly
    expect_rejection 2 "charlm: unknown command 'fly'; expected train, sample, eval or inspect"
}

case_no_command() {
    "$CHARLM" >"$WORK/stdout" 2>"$WORK/stderr"
    STATUS=$?
    expect_rejection 2 "usage: charlm <command> [options]"
}

# ---- Training data ------------------------------------------------------------

case_context_longer_than_data() {
    # The validation split of harbour.txt has 322 characters.
    run_charlm train --data "$TEXT" --out out --block-size 400 --steps 5 --warmup-steps 1
    expect_rejection 1 "is too short: its 3211 tokens split at fraction 0.9 into 2889 train and \
322 validation tokens, but block size 400 needs at least 401 in each"
    expect_no_out
}

case_empty_data() {
    : >empty.txt
    run_charlm train --data empty.txt --out out "${SMALL[@]}"
    expect_rejection 1 "charlm train: text corpus 'empty.txt' is empty (0 bytes)"
    expect_no_out
}

case_missing_data_file() {
    run_charlm train --data missing.txt --out out "${SMALL[@]}"
    expect_rejection 1 "charlm train: text corpus: cannot open 'missing.txt': No such file or \
directory"
    expect_no_out
    mkdir texts
    run_charlm train --data texts --out out "${SMALL[@]}"
    expect_rejection 1 "charlm train: text corpus: 'texts' is a folder; pass the path of a text \
file"
    expect_no_out
}

case_invalid_utf8_data() {
    # Byte 9 is 0xe9, Latin-1 for e-acute, followed by a letter.
    printf 'hello wor\xe9ld, and more text after it\n' >latin1.txt
    run_charlm train --data latin1.txt --out out "${SMALL[@]}"
    expect_rejection 1 "text corpus 'latin1.txt': invalid UTF-8 at byte offset 9 (byte 0xe9 \
starts a 3-byte sequence, but byte 0x6c at +1 is not a continuation byte"
    expect_no_out
}

# ---- sample -------------------------------------------------------------------

case_prompt_outside_vocabulary() {
    copy_fixture_run run
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --prompt 'The #'
    expect_rejection 2 "charlm sample: text vocab encode: character '#' (U+0023) at position 4 \
(byte offset 4) is not in the vocabulary of 52 characters"
    if [ -s "$WORK/stdout" ]; then
        fail "sample wrote text before rejecting the prompt: $(cat "$WORK/stdout")"
    fi
}

case_prompt_invalid_utf8() {
    copy_fixture_run run
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --prompt "$(printf 'ab\xff')"
    expect_rejection 2 "invalid UTF-8 at byte offset 2 (byte 0xff never occurs in UTF-8)"
}

case_empty_prompt() {
    copy_fixture_run run
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --prompt ''
    expect_rejection 2 "charlm sample: --prompt needs a non-empty value"
}

case_top_k_above_vocabulary() {
    copy_fixture_run run
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --top-k 53
    expect_rejection 2 "charlm sample: --top-k 53 exceeds the vocabulary of 52 characters; use a \
value from 1 to 52, or 0 for all"
    # The largest valid value works.
    charlm_ok sample --checkpoint run/ckpt-00000020.h5 --top-k 52 --length 5
}

case_temperature_zero() {
    copy_fixture_run run
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --temperature 0
    expect_rejection 2 "charlm sample: --temperature 0 is invalid; it must be greater than 0"
    run_charlm sample --checkpoint run/ckpt-00000020.h5 --temperature -1
    expect_rejection 2 "charlm sample: --temperature -1 is out of range; expected 0 to 1e+06"
}

# ---- Checkpoints --------------------------------------------------------------

case_missing_checkpoint() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_charlm sample --checkpoint run/missing.h5
    expect_rejection 1 "charlm sample: cannot open checkpoint 'run/missing.h5': No such file or \
directory"
    run_charlm train --out run --resume run/missing.h5 --steps 30
    expect_rejection 1 "charlm train: cannot open checkpoint 'run/missing.h5': No such file or \
directory; check the path"
    run_charlm sample --checkpoint run
    expect_rejection 1 "charlm sample: cannot open checkpoint 'run': it is a folder, not a \
regular file; pass the path of a checkpoint file such as ckpt-best.h5"
    expect_unchanged run "$before"
}

case_not_hdf5_checkpoint() {
    copy_fixture_run run
    echo "step 20 weights" >run/notes.h5
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/notes.h5 --steps 30
    expect_rejection 1 "charlm train: checkpoint 'run/notes.h5' is not an HDF5 file (16 bytes \
without the HDF5 signature)"
    run_charlm inspect --checkpoint run/notes.h5
    expect_rejection 1 "charlm inspect: checkpoint 'run/notes.h5' is not an HDF5 file"
    expect_unchanged run "$before"
}

case_truncated_checkpoint() {
    copy_fixture_run run
    head -c 20000 run/ckpt-00000020.h5 >run/cut.h5
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/cut.h5 --steps 30
    expect_rejection 1 "charlm train: checkpoint 'run/cut.h5' is truncated (HDF5: truncated file: \
eof = 20000"
    run_charlm sample --checkpoint run/cut.h5
    expect_rejection 1 "charlm sample: checkpoint 'run/cut.h5' is truncated"
    expect_unchanged run "$before"
}

case_other_model_kind() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/ddpm.h5
    "$PYTHON" "$EDIT" set-attr run/ddpm.h5 / model_kind ddpm || fail "cannot edit run/ddpm.h5"
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/ddpm.h5 --steps 30
    expect_rejection 1 "charlm train: checkpoint 'run/ddpm.h5' holds a 'ddpm' model, expected \
'charlm'"
    run_charlm sample --checkpoint run/ddpm.h5
    expect_rejection 1 "charlm sample: checkpoint 'run/ddpm.h5' holds a 'ddpm' model"
    expect_unchanged run "$before"
}

case_unknown_stored_choice() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/rotary.h5
    "$PYTHON" "$EDIT" set-attr run/rotary.h5 config pos rotary || fail "cannot edit run/rotary.h5"
    local before
    before=$(snapshot run)
    run_charlm sample --checkpoint run/rotary.h5
    expect_rejection 1 "charlm sample: checkpoint 'run/rotary.h5': configuration field 'pos' has \
the unknown value 'rotary'; expected one of: learned sinusoidal"
    expect_unchanged run "$before"
}

case_flag_differs_on_resume() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --n-embd 32
    expect_rejection 2 "charlm train: checkpoint 'run/ckpt-00000020.h5': configuration field \
'n-embd' differs: the checkpoint was trained with --n-embd 16, the command line gives --n-embd 32"
    run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --no-bias
    expect_rejection 2 "configuration field 'bias' differs: the checkpoint was trained with \
--bias, the command line gives --no-bias"
    run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --optimizer sgd
    expect_rejection 2 "configuration field 'optimizer' differs: the checkpoint was trained with \
--optimizer adamw, the command line gives --optimizer sgd"
    run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --lr 0.002
    expect_rejection 2 "configuration field 'lr' differs: the checkpoint was trained with --lr \
0.001, the command line gives --lr 0.002"
    run_charlm train --out run --resume run/ckpt-00000020.h5 --steps 30 --dropout 0.1
    expect_rejection 2 "configuration field 'dropout' differs: the checkpoint was trained with \
--dropout 0, the command line gives --dropout 0.1;"
    # --init-from checks the model's fields too.
    run_charlm train --data "$TEXT" --out new --init-from run/ckpt-00000020.h5 --n-layer 2
    expect_rejection 2 "configuration field 'n-layer' differs: the checkpoint was trained with \
--n-layer 1, the command line gives --n-layer 2"
    expect_unchanged run "$before"
    if [ -e new ]; then
        fail "the --out folder 'new' was created although --init-from was rejected"
    fi
}

case_misshaped_tensor() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/wide.h5
    "$PYTHON" "$EDIT" widen run/wide.h5 model/transformer.wte.weight ||
        fail "cannot edit run/wide.h5"
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/wide.h5 --steps 30
    expect_rejection 1 "charlm train: checkpoint 'run/wide.h5': dataset \
'model/transformer.wte.weight' has shape (52, 18), expected (52, 16)"
    run_charlm sample --checkpoint run/wide.h5
    expect_rejection 1 "charlm sample: checkpoint 'run/wide.h5': dataset \
'model/transformer.wte.weight' has shape (52, 18), expected (52, 16)"
    expect_unchanged run "$before"
}

case_vocabulary_differs() {
    copy_fixture_run run
    { cat "$TEXT"; echo "#"; } >hash.txt
    local before
    before=$(snapshot run)
    run_charlm train --data hash.txt --out run --resume run/ckpt-00000020.h5 --steps 30
    expect_rejection 1 "charlm train: the vocabulary of 'hash.txt' (53 characters) differs from \
that of checkpoint 'run/ckpt-00000020.h5' (52 characters); use the text the model was trained on"
    run_charlm eval --checkpoint run/ckpt-00000020.h5 --data hash.txt --eval-iters 1
    expect_rejection 1 "charlm eval: the vocabulary of 'hash.txt' (53 characters) differs from \
that of checkpoint 'run/ckpt-00000020.h5' (52 characters)"
    expect_unchanged run "$before"
}

case_text_length_differs() {
    copy_fixture_run run
    { cat "$TEXT"; echo "The cat sleeps."; } >longer.txt
    local before
    before=$(snapshot run)
    run_charlm train --data longer.txt --out run --resume run/ckpt-00000020.h5 --steps 30
    expect_rejection 1 "charlm train: checkpoint 'run/ckpt-00000020.h5' was trained on a text of \
3211 characters but 'longer.txt' has 3227; resume with the same --data file"
    expect_unchanged run "$before"
}

case_already_at_final_step() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_charlm train --out run --resume run/ckpt-00000020.h5
    expect_rejection 2 "charlm train: checkpoint 'run/ckpt-00000020.h5' is already at step 20 and \
--steps is 20; pass a larger --steps to train further"
    expect_unchanged run "$before"
}

# ---- The --out folder ---------------------------------------------------------

case_existing_run() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_charlm train --data "$TEXT" --out run "${SMALL[@]}" --steps 30
    expect_rejection 1 "charlm train: --out folder 'run' already holds a run (checkpoint \
run/ckpt-00000020.h5); continue it with --resume run/ckpt-00000020.h5, or choose another --out"
    expect_unchanged run "$before"

    # A run that failed before its first checkpoint leaves only metrics.csv.
    mkdir early
    cp run/metrics.csv early/
    before=$(snapshot early)
    run_charlm train --data "$TEXT" --out early "${SMALL[@]}" --steps 30
    expect_rejection 1 "charlm train: --out folder 'early' already holds a run's \
early/metrics.csv; choose another --out, or delete the file to start over"
    expect_unchanged early "$before"
}

case_resume_into_other_run() {
    expect_resume_into_other_run_rejected "$CHARLM"
}

case_out_path_too_long() {
    expect_out_path_limit "$CHARLM" --data "$TEXT" "${SMALL[@]}"
}

case_out_under_regular_file() {
    echo "not a folder" >file
    run_charlm train --data "$TEXT" --out file/run "${SMALL[@]}" --steps 5
    expect_rejection 1 "charlm train: cannot create --out folder 'file/run': Not a directory"
    run_charlm train --data "$TEXT" --out file "${SMALL[@]}" --steps 5
    expect_rejection 1 "charlm train: --out 'file' exists and is not a folder; choose a folder path"
    if [ "$(cat file)" != "not a folder" ]; then
        fail "the regular file 'file' was changed"
    fi
}

# Root ignores permission bits. So as root the program runs as the user
# nobody through setpriv, and as any other user a read-only folder suffices.
case_out_not_writable() {
    mkdir locked
    chmod 555 locked
    local runner=()
    if [ "$(id -u)" -eq 0 ]; then
        if ! command -v setpriv >/dev/null; then
            skip "running as root without setpriv, so no folder is read-only to charlm"
        fi
        runner=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
        chmod 755 "$WORK"
        if ! "${runner[@]}" test -r "$TEXT" -a -x "$CHARLM"; then
            skip "the user nobody cannot read $TEXT or run $CHARLM"
        fi
    fi
    "${runner[@]}" "$CHARLM" train --data "$TEXT" --out locked "${SMALL[@]}" --steps 5 \
        >"$WORK/stdout" 2>"$WORK/stderr"
    STATUS=$?
    expect_rejection 1 "charlm train: --out folder 'locked' is not writable: Permission denied; \
choose a writable folder"
    if [ -n "$(ls -A locked)" ]; then
        fail "files appeared in the read-only folder: $(ls -A locked)"
    fi
}

# `ulimit -f 40` caps files at 40 KiB, below the size of a checkpoint (about
# 88 KiB), so the first save of the resumed run fails as on a full disk.
case_disk_full_at_checkpoint() {
    copy_fixture_run run
    rm run/ckpt-00000020.h5
    local checkpoints
    checkpoints=$(cd run && md5sum ckpt-00000010.h5 ckpt-best.h5)
    (ulimit -f 40 && exec "$CHARLM" train --out run --resume run/ckpt-00000010.h5 --steps 30 \
        >"$WORK/stdout" 2>"$WORK/stderr")
    STATUS=$?
    expect_rejection 1 "charlm train: cannot write checkpoint 'run/ckpt-"
    expect_error "failed after 40960 of"
    expect_error "bytes: File too large"
    expect_error "charlm train: stopped at step 20; earlier checkpoints in run are intact"
    if [ "$(cd run && md5sum ckpt-00000010.h5 ckpt-best.h5)" != "$checkpoints" ]; then
        fail "an earlier checkpoint changed"
    fi
    for file in run/ckpt-00000010.h5 run/ckpt-best.h5; do
        charlm_ok inspect --checkpoint "$file"
    done
    local leftovers
    leftovers=$(find run -name '*.tmp*')
    if [ -n "$leftovers" ]; then
        fail "the failed save left temporary files: $leftovers"
    fi
}

# Each command that prints to stdout fails when that output is lost.
case_stdout_write_fails() {
    copy_fixture_run run
    expect_stdout_write_failure "$CHARLM" sample --checkpoint run/ckpt-00000020.h5 --length 1000
    expect_stdout_write_failure "$CHARLM" inspect --checkpoint run/ckpt-00000020.h5
    expect_stdout_write_failure "$CHARLM" eval --checkpoint run/ckpt-00000020.h5 --data "$TEXT" \
        --eval-iters 1
    expect_stdout_write_failure "$CHARLM" --help
    expect_stdout_write_failure "$CHARLM" sample --help
    expect_stdout_write_failure "$CHARLM" train --data "$TEXT" --out out "${SMALL[@]}" --steps 4
    # The run itself is complete: only its log was lost.
    charlm_ok inspect --checkpoint out/ckpt-00000004.h5
    # The same output to a working stream exits 0.
    charlm_ok sample --checkpoint run/ckpt-00000020.h5 --length 1000
}

# ---- Training -----------------------------------------------------------------

case_nonfinite_loss() {
    # SGD at the largest learning rate, without clipping, diverges to NaN
    # within about 20 steps.
    run_charlm train --data "$TEXT" --out out --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 \
        --batch-size 4 --eval-iters 2 --steps 60 --optimizer sgd --lr 10 --momentum 0.99 \
        --grad-clip 0 --warmup-steps 1 --threads 1
    expect_rejection 1 "is not finite; lower --lr, raise --warmup-steps, or pass --skip-nonfinite \
to skip such steps"
    expect_error "charlm train: stopped at step "
}

name=${1:?usage: errors.sh CASE}
if ! declare -F "case_$name" >/dev/null; then
    fail "unknown case '$name'"
fi
"case_$name"
