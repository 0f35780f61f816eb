#!/usr/bin/env bash
# Bad input and failures: ddpm rejects each with a clear message and a
# non-zero exit status, and writes nothing. docs/errors.md lists every case
# with its message; each row names the CTest test ddpm_error_<case> that runs
# the function case_<case> below.
#
# Usage: errors.sh CASE
source "$(dirname "$0")/lib.sh"

# Flag and data errors come before any work: the --out folder is not even
# created.
expect_no_out() {
    if [ -e out ]; then
        fail "the --out folder was created although the command was rejected"
    fi
}

# Trains the tiny model on the test images into the folder out, with extra
# flags, and expects a rejection with the given status and message.
train_rejected() {
    local status=$1 message=$2
    shift 2
    run_ddpm train --data "$IDX_DATA" --out out "${TINY[@]}" --steps 5 "$@"
    expect_rejection "$status" "$message"
    expect_no_out
}

# ---- Flags --------------------------------------------------------------------

case_unknown_flag() {
    train_rejected 2 "ddpm train: unknown option '--bogus'; run 'ddpm train --help' for the list" \
        --bogus 1
}

case_missing_value() {
    run_ddpm train --data "$IDX_DATA" --out
    expect_rejection 2 "ddpm train: --out needs a value"
}

case_non_numeric_value() {
    train_rejected 2 "ddpm train: invalid value 'abc' for --eval-interval; expected an integer" \
        --eval-interval abc
    train_rejected 2 "ddpm train: invalid value 'fast' for --lr; expected a finite number" \
        --lr fast
}

case_zero_size() {
    run_ddpm train --data "$IDX_DATA" --out out --batch-size 0
    expect_rejection 2 "ddpm train: --batch-size 0 is out of range; expected 1 to 65536"
    expect_no_out
    run_ddpm train --data "$IDX_DATA" --out out --steps 0
    expect_rejection 2 "ddpm train: --steps 0 is out of range; expected 1 to 1000000000"
    expect_no_out
    run_ddpm train --data "$IDX_DATA" --out out --depth 0
    expect_rejection 2 "ddpm train: --depth 0 is out of range; expected 1 to 1024"
    expect_no_out
}

case_negative_size() {
    run_ddpm train --data "$IDX_DATA" --out out --width -16
    expect_rejection 2 "ddpm train: --width -16 is out of range; expected 4 to 65536"
    expect_no_out
    run_ddpm train --data "$IDX_DATA" --out out --arch mlp --hidden -1
    expect_rejection 2 "ddpm train: --hidden -1 is out of range; expected 1 to 65536"
    expect_no_out
}

case_lr_not_positive() {
    run_ddpm train --data "$IDX_DATA" --out out --lr 0
    expect_rejection 2 "ddpm train: --lr 0 is out of range; expected 1e-12 to 10"
    expect_no_out
    run_ddpm train --data "$IDX_DATA" --out out --lr -0.001
    expect_rejection 2 "ddpm train: --lr -0.001 is out of range; expected 1e-12 to 10"
    expect_no_out
}

case_ema_out_of_range() {
    train_rejected 2 "ddpm train: --ema 1 is out of range; the decay must be below 1, such as \
0.999 (0 turns the EMA off)" --ema 1
    train_rejected 2 "ddpm train: --ema -0.5 is out of range; expected 0 to 1" --ema -0.5
    # A decay just below 1 is accepted.
    ddpm_ok train --data "$IDX_DATA" --out accepted "${TINY[@]}" --steps 2 --ema 0.9999999999
}

case_unknown_arch() {
    train_rejected 2 "ddpm train: invalid value 'unet' for --arch; expected one of: dit mlp" \
        --arch unet
}

case_repeated_flag() {
    train_rejected 2 "ddpm train: --steps is given more than once" --steps 6
}

case_switch_with_value() {
    train_rejected 2 "ddpm train: --skip-nonfinite takes no value; use --skip-nonfinite or \
--no-skip-nonfinite" --skip-nonfinite=1
}

case_stray_argument() {
    run_ddpm train "$IDX_DATA" --out out
    expect_rejection 2 "ddpm train: unexpected argument '$IDX_DATA'; options start with --"
    expect_no_out
}

case_missing_out() {
    run_ddpm train --data "$IDX_DATA"
    expect_rejection 2 "ddpm train: --out is required; run 'ddpm train --help' for usage"
}

case_resume_with_init_from() {
    run_ddpm train --out out --resume a.h5 --init-from b.h5
    expect_rejection 2 "ddpm train: --resume and --init-from exclude each other"
    expect_no_out
}

case_unknown_command() {
    run_ddpm fly
    expect_rejection 2 "ddpm: unknown command 'fly'; expected train, sample, eval or inspect"
}

case_no_command() {
    run_program "$DDPM"
    expect_rejection 2 "usage: ddpm <command> [options]"
}

case_beta_start_above_end() {
    train_rejected 2 "ddpm train: --beta-start 0.1 exceeds --beta-end 0.01; the linear schedule \
needs --beta-start at most --beta-end" --beta-start 0.1 --beta-end 0.01
}

case_warmup_past_decay() {
    train_rejected 2 "ddpm train: the cosine decay ends at step 5 (--lr-decay-steps, or --steps \
when it is 0), which must be after the warmup of --warmup-steps 10; lower --warmup-steps or raise \
--lr-decay-steps" --lr-decay cosine --warmup-steps 10
}

case_min_lr_above_lr() {
    train_rejected 2 "ddpm train: --min-lr 0.1 must not exceed --lr 0.001; lower --min-lr" \
        --lr-decay cosine --min-lr 0.1
}

case_heads_do_not_divide_width() {
    run_ddpm train --data "$IDX_DATA" --out out --patch 7 --width 18 --heads 4 --depth 1 \
        --batch-size 4 --val-count 3 --steps 5
    expect_rejection 2 "ddpm train: denoiser: invalid width 18, heads 4 or depth 1; the width \
must be a multiple of 4 and of the heads"
    expect_no_out
}

case_patch_does_not_divide_image() {
    run_ddpm train --data "$IDX_DATA" --out out --patch 5 --width 16 --heads 2 --depth 1 \
        --batch-size 4 --val-count 3 --steps 5
    expect_rejection 2 "ddpm train: denoiser: patch size 5 does not divide the image side 28; \
pass a --patch that divides it"
    expect_no_out
}

case_odd_t_freq_dim() {
    run_ddpm train --data "$IDX_DATA" --out out --arch mlp --hidden 8 --t-freq-dim 15 \
        --batch-size 4 --val-count 3 --steps 5
    expect_rejection 2 "ddpm train: denoiser: invalid timestep embedding widths 15 and 512; the \
sinusoid width must be even and both positive"
    expect_no_out
}

case_transformer_on_points() {
    run_ddpm train --data moons --out out --steps 5
    expect_rejection 2 "ddpm train: --data moons contains points; the patch Transformer needs \
images, so pass --arch mlp"
    expect_no_out
}

case_batch_larger_than_data() {
    run_ddpm train --data "$IDX_DATA" --out out --patch 7 --width 16 --heads 2 --depth 1 \
        --batch-size 6 --val-count 3 --steps 5
    expect_rejection 1 "ddpm train: --batch-size 6 exceeds the 5 training items of \
'$IDX_DATA'; lower --batch-size"
    expect_no_out
}

case_val_count_above_test_split() {
    run_ddpm train --data "$IDX_DATA" --out out --patch 7 --width 16 --heads 2 --depth 1 \
        --batch-size 4 --val-count 4 --steps 5
    expect_rejection 1 "ddpm train: '$IDX_DATA': the test split has 3 images of 28 x 28; \
validation needs 4 of 28 x 28 (lower --val-count)"
    expect_no_out
}

# ---- sample -------------------------------------------------------------------

# Expects a sample rejection that wrote no PNG or HDF5 file.
expect_no_samples() {
    local files
    files=$(find . -maxdepth 2 \( -name '*.png' -o -name 'samples*.h5' \))
    if [ -n "$files" ]; then
        fail "sample wrote files although it was rejected: $files"
    fi
}

case_unknown_sampler() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --sampler euler
    expect_rejection 2 "ddpm sample: invalid value 'euler' for --sampler; expected one of: ddim \
ddpm"
    expect_no_samples
}

case_eta_negative() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --eta -0.5
    expect_rejection 2 "ddpm sample: --eta -0.5 is out of range; expected 0 to 10"
    expect_no_samples
}

case_ddim_steps_out_of_range() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --steps 51
    expect_rejection 2 "ddpm sample: --steps 51 exceeds the 50 diffusion steps of the checkpoint; \
pass at most 50"
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --steps 0
    expect_rejection 2 "ddpm sample: --steps 0 is out of range; expected 1 to 1000000"
    expect_no_samples
    # The largest valid value works.
    ddpm_ok sample --checkpoint run/ckpt-00000020.h5 --steps 50 --count 2 --threads 1
}

case_count_zero() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --count 0
    expect_rejection 2 "ddpm sample: --count 0 is out of range; expected 1 to 10000000"
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --batch 0
    expect_rejection 2 "ddpm sample: --batch 0 is out of range; expected 1 to 65536"
    expect_no_samples
}

case_out_not_png() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --out samples.jpg
    expect_rejection 2 "ddpm sample: --out 'samples.jpg' must end in .png"
    expect_no_samples
}

# ---- Training data ------------------------------------------------------------

case_missing_data_folder() {
    run_ddpm train --data missing --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: cannot open --data folder 'missing': No such file or \
directory; pass a folder of IDX files or a synthetic set (moons, mixture, gaussian)"
    expect_no_out
    echo "not a folder" >file
    run_ddpm train --data file --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: --data 'file' is not a folder; pass a folder of IDX files or \
a synthetic set (moons, mixture, gaussian)"
    expect_no_out
}

case_missing_images_file() {
    run_ddpm train --data "$DDPM_DATA/no-images" --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: idx split: neither '$DDPM_DATA/no-images/\
train-images-idx3-ubyte.gz' nor '$DDPM_DATA/no-images/train-images-idx3-ubyte' exists"
    expect_no_out
}

case_wrong_idx_magic() {
    run_ddpm train --data "$DDPM_DATA/bad-magic" --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: idx '$DDPM_DATA/bad-magic/train-images-idx3-ubyte': magic \
number 0x12345678, expected 0x00000803 (images)"
    expect_no_out
}

case_truncated_idx() {
    run_ddpm train --data "$DDPM_DATA/truncated" --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: idx '$DDPM_DATA/truncated/train-images-idx3-ubyte': truncated \
data: the header declares 5 x 28 x 28 = 3920 bytes of elements but only 1000 follow"
    expect_no_out
}

case_label_count_mismatch() {
    run_ddpm train --data "$DDPM_DATA/count-mismatch" --out out "${TINY[@]}" --steps 5
    expect_rejection 1 "count-mismatch/train-images-idx3-ubyte' contains 5 images but \
'$DDPM_DATA/count-mismatch/train-labels-idx1-ubyte' contains 4 labels"
    expect_no_out
}

case_image_size_differs() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm train --data "$DDPM_DATA/small14" --out run --resume run/ckpt-00000020.h5 --steps 30
    expect_rejection 1 "ddpm train: '$DDPM_DATA/small14' has 196 values per item (image side 14) \
but the checkpoint's model takes 784 (image side 28); use the data it was trained on"
    run_ddpm eval --checkpoint run/ckpt-00000020.h5 --data "$DDPM_DATA/small14"
    expect_rejection 1 "ddpm eval: '$DDPM_DATA/small14' has 196 values per item (image side 14)"
    expect_unchanged run "$before"
}

# ---- Checkpoints --------------------------------------------------------------

case_missing_checkpoint() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm sample --checkpoint run/missing.h5
    expect_rejection 1 "ddpm sample: cannot open checkpoint 'run/missing.h5': No such file or \
directory"
    run_ddpm train --out run --resume run/missing.h5 --steps 30
    expect_rejection 1 "ddpm train: cannot open checkpoint 'run/missing.h5': No such file or \
directory"
    expect_unchanged run "$before"
}

case_not_hdf5_checkpoint() {
    copy_fixture_run run
    echo "step 20 weights" >run/notes.h5
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/notes.h5 --steps 30
    expect_rejection 1 "ddpm train: checkpoint 'run/notes.h5' is not an HDF5 file (16 bytes \
without the HDF5 signature)"
    run_ddpm inspect --checkpoint run/notes.h5
    expect_rejection 1 "ddpm inspect: checkpoint 'run/notes.h5' is not an HDF5 file"
    expect_unchanged run "$before"
}

case_truncated_checkpoint() {
    copy_fixture_run run
    head -c 20000 run/ckpt-00000020.h5 >run/cut.h5
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/cut.h5 --steps 30
    expect_rejection 1 "ddpm train: checkpoint 'run/cut.h5' is truncated (HDF5: truncated file: \
eof = 20000"
    run_ddpm sample --checkpoint run/cut.h5
    expect_rejection 1 "ddpm sample: checkpoint 'run/cut.h5' is truncated"
    expect_unchanged run "$before"
}

case_other_model_kind() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/charlm.h5
    "$PYTHON" "$EDIT" set-attr run/charlm.h5 / model_kind charlm || fail "cannot edit run/charlm.h5"
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/charlm.h5 --steps 30
    expect_rejection 1 "ddpm train: checkpoint 'run/charlm.h5' holds a 'charlm' model, expected \
'ddpm'; pass a checkpoint saved by the same program"
    run_ddpm sample --checkpoint run/charlm.h5
    expect_rejection 1 "ddpm sample: checkpoint 'run/charlm.h5' holds a 'charlm' model"
    run_ddpm eval --checkpoint run/charlm.h5
    expect_rejection 1 "ddpm eval: checkpoint 'run/charlm.h5' holds a 'charlm' model"
    expect_unchanged run "$before"
}

case_unknown_stored_choice() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/unet.h5
    "$PYTHON" "$EDIT" set-attr run/unet.h5 config arch unet || fail "cannot edit run/unet.h5"
    local before
    before=$(snapshot run)
    run_ddpm sample --checkpoint run/unet.h5
    expect_rejection 1 "ddpm sample: checkpoint 'run/unet.h5': configuration field 'arch' has the \
unknown value 'unet'; expected one of: dit mlp"
    run_ddpm inspect --checkpoint run/unet.h5
    expect_rejection 1 "configuration field 'arch' has the unknown value 'unet'"
    expect_unchanged run "$before"
}

case_data_differs_on_resume() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/ckpt-00000020.h5 --steps 30 \
        --data "$DDPM_DATA/more-items"
    expect_rejection 1 "ddpm train: checkpoint 'run/ckpt-00000020.h5': the run trained on 5 \
training items, but --data '$DDPM_DATA/more-items' has 6; pass the --data the run started with"
    expect_unchanged run "$before"
}

case_flag_differs_on_resume() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/ckpt-00000020.h5 --steps 30 --width 32
    expect_rejection 2 "ddpm train: checkpoint 'run/ckpt-00000020.h5': configuration field \
'width' differs: the checkpoint was trained with --width 16, the command line gives --width 32; \
drop the flag to keep the checkpoint's value, or start a new run"
    run_ddpm train --out run --resume run/ckpt-00000020.h5 --steps 30 --arch mlp
    expect_rejection 2 "configuration field 'arch' differs: the checkpoint was trained with \
--arch dit, the command line gives --arch mlp"
    run_ddpm train --out run --resume run/ckpt-00000020.h5 --steps 30 --lr 0.002
    expect_rejection 2 "configuration field 'lr' differs: the checkpoint was trained with --lr \
0.001, the command line gives --lr 0.002"
    run_ddpm train --out run --resume run/ckpt-00000020.h5 --steps 30 --ema 0.99
    expect_rejection 2 "configuration field 'ema' differs: the checkpoint was trained with --ema \
0.9, the command line gives --ema 0.99"
    # --init-from checks the model's fields too.
    run_ddpm train --data "$IDX_DATA" --out new --init-from run/ckpt-00000020.h5 --depth 2
    expect_rejection 2 "configuration field 'depth' differs: the checkpoint was trained with \
--depth 1, the command line gives --depth 2"
    expect_unchanged run "$before"
    if [ -e new ]; then
        fail "the --out folder 'new' was created although --init-from was rejected"
    fi
}

case_misshaped_tensor() {
    need_h5py
    copy_fixture_run run
    cp run/ckpt-00000020.h5 run/wide.h5
    "$PYTHON" "$EDIT" widen run/wide.h5 model/patch_embed.weight || fail "cannot edit run/wide.h5"
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/wide.h5 --steps 30
    expect_rejection 1 "ddpm train: checkpoint 'run/wide.h5': dataset 'model/patch_embed.weight' \
has shape (16, 51), expected (16, 49)"
    run_ddpm sample --checkpoint run/wide.h5
    expect_rejection 1 "ddpm sample: checkpoint 'run/wide.h5': dataset \
'model/patch_embed.weight' has shape (16, 51), expected (16, 49)"
    expect_unchanged run "$before"
}

case_already_at_final_step() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm train --out run --resume run/ckpt-00000020.h5
    expect_rejection 2 "ddpm train: checkpoint 'run/ckpt-00000020.h5' is already at step 20 and \
--steps is 20; pass a larger --steps to train further"
    expect_unchanged run "$before"
}

# ---- Output -------------------------------------------------------------------

case_existing_run() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm train --data "$IDX_DATA" --out run "${TINY[@]}" --steps 30
    expect_rejection 1 "ddpm train: --out folder 'run' already holds a run (checkpoint \
run/ckpt-00000020.h5); continue it with --resume run/ckpt-00000020.h5, or choose another --out"
    expect_unchanged run "$before"

    # A run that failed before its first checkpoint leaves only metrics.csv.
    mkdir early
    cp run/metrics.csv early/
    before=$(snapshot early)
    run_ddpm train --data "$IDX_DATA" --out early "${TINY[@]}" --steps 30
    expect_rejection 1 "ddpm train: --out folder 'early' already holds a run's early/metrics.csv; \
choose another --out, or delete the file to start over"
    expect_unchanged early "$before"
}

case_resume_into_other_run() {
    expect_resume_into_other_run_rejected "$DDPM"
}

case_out_path_too_long() {
    expect_out_path_limit "$DDPM" --data "$IDX_DATA" "${TINY[@]}"
}

case_out_under_regular_file() {
    echo "not a folder" >file
    run_ddpm train --data "$IDX_DATA" --out file/run "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: cannot create --out folder 'file/run': Not a directory; \
choose a path whose parent is a writable folder"
    run_ddpm train --data "$IDX_DATA" --out file "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: --out 'file' exists and is not a folder; choose a folder path"
    if [ "$(cat file)" != "not a folder" ]; then
        fail "the regular file 'file' was changed"
    fi
}

case_out_not_writable() {
    mkdir locked
    chmod 555 locked
    run_unprivileged "$IDX_DATA/t10k-images-idx3-ubyte" -- "$DDPM" train --data "$IDX_DATA" \
        --out locked "${TINY[@]}" --steps 5
    expect_rejection 1 "ddpm train: --out folder 'locked' is not writable: Permission denied; \
choose a writable folder"
    if [ -n "$(ls -A locked)" ]; then
        fail "files appeared in the read-only folder: $(ls -A locked)"
    fi
}

case_png_folder_missing() {
    copy_fixture_run run
    run_ddpm sample --checkpoint run/ckpt-00000020.h5 --out missing/samples.png
    expect_rejection 1 "ddpm sample: cannot write --out 'missing/samples.png': 'missing' is not an \
existing folder; create it or choose another path"
    if [ -e missing ]; then
        fail "sample created the folder 'missing'"
    fi
    if grep -qF "ddpm sample:" "$WORK/stdout"; then
        fail "sample started sampling before checking --out: $(cat "$WORK/stdout")"
    fi
}

case_png_folder_not_writable() {
    copy_fixture_run run
    mkdir locked
    chmod 555 locked
    chmod -R a+rX run
    run_unprivileged run/ckpt-00000020.h5 -- "$DDPM" sample --checkpoint run/ckpt-00000020.h5 \
        --out locked/samples.png
    expect_rejection 1 "ddpm sample: cannot write --out 'locked/samples.png': folder 'locked' is \
not writable: Permission denied; choose a writable folder"
    if [ -n "$(ls -A locked)" ]; then
        fail "files appeared in the read-only folder: $(ls -A locked)"
    fi
}

# `ulimit -f 40` caps files at 40 KiB, below the size of a checkpoint (about
# 135 KiB), so the first save of the resumed run fails as on a full disk.
case_disk_full_at_checkpoint() {
    copy_fixture_run run
    rm run/ckpt-00000020.h5
    local checkpoints
    checkpoints=$(cd run && md5sum ckpt-00000010.h5 ckpt-best.h5)
    (ulimit -f 40 && exec "$DDPM" train --out run --resume run/ckpt-00000010.h5 --steps 30 \
        >"$WORK/stdout" 2>"$WORK/stderr")
    STATUS=$?
    expect_rejection 1 "ddpm train: cannot write checkpoint 'run/ckpt-"
    expect_error "failed after 40960 of"
    expect_error "bytes: File too large"
    expect_error "ddpm train: stopped at step 20; earlier checkpoints in run are intact"
    if [ "$(cd run && md5sum ckpt-00000010.h5 ckpt-best.h5)" != "$checkpoints" ]; then
        fail "an earlier checkpoint changed"
    fi
    for file in run/ckpt-00000010.h5 run/ckpt-best.h5; do
        ddpm_ok inspect --checkpoint "$file"
    done
    local leftovers
    leftovers=$(find run -name '*.tmp*')
    if [ -n "$leftovers" ]; then
        fail "the failed save left temporary files: $leftovers"
    fi
}

# sample writes <stem>.png and <stem>.h5, so --out ckpt-best.png names the
# checkpoint ckpt-best.h5 as the HDF5 file. Neither it nor a file of another
# kind at the PNG path may be replaced.
case_sample_would_replace_checkpoint() {
    copy_fixture_run run
    local before
    before=$(snapshot run)
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out run/ckpt-best.png --count 4 --steps 5
    expect_rejection 1 "ddpm sample: will not replace 'run/ckpt-best.h5', the HDF5 file of --out \
'run/ckpt-best.png': it is a 'ddpm' checkpoint, not a samples file; choose another --out or move \
the file away"
    expect_unchanged run "$before"
    if grep -qF "ddpm sample:" "$WORK/stdout"; then
        fail "sample started sampling before checking --out: $(cat "$WORK/stdout")"
    fi

    echo "notes" >notes.h5
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out notes.png --count 4 --steps 5
    expect_rejection 1 "ddpm sample: will not replace 'notes.h5', the HDF5 file of --out \
'notes.png': it is not a samples file of ddpm sample; choose another --out or move the file away"

    cp run/ckpt-best.h5 copy.png
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out copy.png --count 4 --steps 5
    expect_rejection 1 "ddpm sample: will not replace 'copy.png': it is not a PNG file; move it \
away or choose another --out"
    if ! cmp -s copy.png run/ckpt-best.h5; then
        fail "sample changed copy.png"
    fi
    if [ -e copy.h5 ]; then
        fail "sample wrote copy.h5 although it was rejected"
    fi

    # Its own PNG and samples file are replaced by a new run.
    ddpm_ok sample --checkpoint run/ckpt-best.h5 --out own.png --count 4 --steps 5 --seed 1 \
        --threads 1
    expect_output "seed 1, 1 thread"
    local first
    first=$(md5sum own.png own.h5)
    ddpm_ok sample --checkpoint run/ckpt-best.h5 --out own.png --count 4 --steps 5 --seed 2
    if [ "$(md5sum own.png own.h5)" = "$first" ]; then
        fail "a second sample with another seed did not replace own.png and own.h5"
    fi
}

case_sample_out_is_folder() {
    copy_fixture_run run
    mkdir grid.png
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out grid.png --count 4 --steps 5
    expect_rejection 1 "ddpm sample: --out 'grid.png' is a folder; pass a PNG file path such as \
'grid.png/samples.png'"
    if grep -qF "ddpm sample:" "$WORK/stdout"; then
        fail "sample started sampling before checking --out: $(cat "$WORK/stdout")"
    fi
    if [ -n "$(ls -A grid.png)" ] || [ -e grid.h5 ]; then
        fail "sample wrote files although it was rejected: $(ls -A grid.png) $(ls grid.h5)"
    fi
}

case_out_without_name() {
    copy_fixture_run run
    mkdir dir
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out .png
    expect_rejection 2 "ddpm sample: --out '.png' needs a file name before .png, such as \
samples.png"
    run_ddpm sample --checkpoint run/ckpt-best.h5 --out dir/.png
    expect_rejection 2 "ddpm sample: --out 'dir/.png' needs a file name before .png, such as \
samples.png"
    expect_no_samples
    if [ -e .h5 ] || [ -n "$(ls -A dir)" ]; then
        fail "sample wrote files although it was rejected"
    fi
}

# Runs sample under a file size limit of $1 KiB, over the outputs of an
# earlier run, and expects the failure message $2.
sample_size_limited() {
    (ulimit -f "$1" && exec "$DDPM" sample --checkpoint run/ckpt-best.h5 --out out/s.png \
        --count 4 --steps 5 --seed 7 >"$WORK/stdout" 2>"$WORK/stderr")
    STATUS=$?
    expect_rejection 1 "$2"
    expect_error "ddpm sample: wrote no samples; 'out/s.png' and 'out/s.h5' are as they were"
}

# The PNG of the test (4 images of 28 x 28) takes about 2.5 KiB and the HDF5
# file about 19 KiB. ulimit -f 1 stops the PNG, ulimit -f 12 the HDF5 file.
# sample ignores SIGXFSZ, so each write fails with EFBIG, and the files of the
# earlier run stay as they were.
case_sample_file_size_limit() {
    copy_fixture_run run
    mkdir out
    ddpm_ok sample --checkpoint run/ckpt-best.h5 --out out/s.png --count 4 --steps 5
    local before
    before=$(snapshot out)
    sample_size_limited 1 "ddpm sample: writing the PNG of --out 'out/s.png' failed: cannot write \
'out/s.png.new."
    expect_error "File too large"
    expect_unchanged out "$before"
    sample_size_limited 12 "ddpm sample: cannot write checkpoint 'out/s.h5': writing temporary file \
'out/s.h5.tmp."
    expect_error "failed after 12288 of"
    expect_unchanged out "$before"
}

# Each command that prints to stdout fails when that output is lost.
case_stdout_write_fails() {
    copy_fixture_run run
    expect_stdout_write_failure "$DDPM" inspect --checkpoint run/ckpt-best.h5
    expect_stdout_write_failure "$DDPM" sample --checkpoint run/ckpt-best.h5 --out s.png \
        --count 4 --steps 5
    expect_stdout_write_failure "$DDPM" --help
    expect_stdout_write_failure "$DDPM" sample --help
    # The same output to a working stream exits 0.
    ddpm_ok inspect --checkpoint run/ckpt-best.h5
}

# ---- Training -----------------------------------------------------------------

case_nonfinite_loss() {
    # AdamW's decoupled weight decay at lr 10 and decay 10 multiplies every
    # weight by 1 - 10 * 10 = -99 per step, so the weights overflow float
    # within about 10 steps and the loss becomes NaN.
    run_ddpm train --data "$IDX_DATA" --out out "${TINY[@]}" --steps 60 --lr 10 \
        --weight-decay 10 --eval-interval 5 --threads 1
    expect_rejection 1 "is not finite; lower --lr, raise --warmup-steps, or pass --skip-nonfinite \
to skip such steps"
    expect_error "ddpm train: step "
    expect_error "ddpm train: stopped at step "
    local failed stopped
    failed=$(sed -n 's/^ddpm train: step \([0-9]*\): the loss .*/\1/p' "$WORK/stderr")
    stopped=$(sed -n 's/^ddpm train: stopped at step \([0-9]*\);.*/\1/p' "$WORK/stderr")
    if [ -z "$failed" ] || [ "$stopped" != $((failed - 1)) ]; then
        fail "the failed step ($failed) does not follow the last completed step ($stopped)"
    fi
    # The last checkpoint before the failure is there and loads.
    local last
    last=$(ls out/ckpt-0*.h5 | tail -n 1)
    if [ -z "$last" ]; then
        fail "no checkpoint was kept; stdout: $(cat "$WORK/stdout")"
    fi
    ddpm_ok inspect --checkpoint "$last"
    local saved
    saved=$(sed -n 's/^step  *\([0-9]*\) of 60$/\1/p' "$WORK/stdout")
    if [ -z "$saved" ] || [ "$saved" -gt "$stopped" ]; then
        fail "$last is at step '$saved', after the last completed step $stopped"
    fi
}

name=${1:?usage: errors.sh CASE}
if ! declare -F "case_$name" >/dev/null; then
    fail "unknown case '$name'"
fi
"case_$name"
