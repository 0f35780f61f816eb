#!/usr/bin/env bash
# Trains a small model on real data and shows what it learned.
#
# Usage: scripts/quickstart.sh [TEXT_FILE]
#        scripts/quickstart.sh ddpm
#
# Default mode: on Debian, run as root, it first installs the missing packages
# (including the `fortunes` package, whose quotations are the default corpus).
# It builds tapegrad, trains a character-level GPT for a few minutes on 2 cores
# with a line of progress every 50 steps, writes checkpoints to
# runs/quickstart/, and prints 600 generated characters. Any UTF-8 text file
# can be given instead of the fortunes.
# Environment: STEPS (default 2500) and THREADS (default: all cores).
#
# ddpm mode: installs Fashion-MNIST (Debian's dataset-fashion-mnist) and
# matplotlib, and builds the `ddpm` program. It trains the patch Transformer
# for a few minutes with a line of progress every 25 steps and writes
# checkpoints to runs/quickstart-ddpm/. Then it draws 64 images with DDIM into
# runs/quickstart-ddpm/samples.png and plots the loss curves.
# Environment: STEPS (default 600) and THREADS (default: all cores).
set -euo pipefail

# A text file given by a relative path is relative to where the script was
# started, so it is made absolute before the script moves to the repository.
corpus=${1:-}
if [ -n "$corpus" ] && [ "$corpus" != "ddpm" ] && [ "${corpus#/}" = "$corpus" ]; then
    corpus=$PWD/$corpus
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Builds one program, keeping the compiler's output in a log unless it fails.
build_program() {
    echo "== build $1 (log in build/quickstart-build.log)"
    mkdir -p build
    if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release &&
           cmake --build build -j "$(nproc)" --target "$1"; } > build/quickstart-build.log 2>&1; then
        tail -n 30 build/quickstart-build.log
        echo "quickstart: the build failed; the full log is build/quickstart-build.log" >&2
        exit 1
    fi
}

if [ "${1:-}" = "ddpm" ]; then
    scripts/deps.sh dataset-fashion-mnist python3-matplotlib
    build_program ddpm

    run=runs/quickstart-ddpm
    mkdir -p "$run"
    # A fresh run each time: an earlier quickstart's checkpoints are replaced.
    rm -f "$run"/ckpt-*.h5 "$run"/metrics.csv

    echo "== train the patch Transformer on Fashion-MNIST"
    build/models/ddpm/ddpm train --data /usr/share/datasets/fashion-mnist --out "$run" \
        --arch dit --steps "${STEPS:-600}" --batch-size 64 --lr 1e-3 --ema 0.995 \
        --eval-interval 200 --log-interval 25 --threads "${THREADS:-0}"

    checkpoint=$(ls "$run"/ckpt-0*.h5 | sort | tail -n 1)
    echo "== sample from $checkpoint"
    build/models/ddpm/ddpm sample --checkpoint "$checkpoint" --sampler ddim --steps 50 \
        --count 64 --columns 8 --seed 7 --threads "${THREADS:-0}" --out "$run/samples.png"
    scripts/plot_metrics.py "$run/metrics.csv" "$run/loss.png"
    echo "== done: samples in $run/samples.png (raw values in $run/samples.h5), loss curves in $run/loss.png"
    exit 0
fi

scripts/deps.sh fortunes
build_program charlm

run=runs/quickstart
mkdir -p "$run"
if [ -z "$corpus" ]; then
    # About half a megabyte of quotations, literature and wisdom from the
    # fortunes package, without the '%' lines that separate the entries.
    corpus=$run/fortunes.txt
    fortunes=/usr/share/games/fortunes
    cat "$fortunes"/{fortunes,literature,wisdom,people,humorists,platitudes,science} \
        | grep -v '^%$' | tr -d '\b\r' > "$corpus"
fi
if [ ! -f "$corpus" ]; then
    echo "quickstart: '$corpus' is not a file; pass the path of a UTF-8 text file, or ddpm" >&2
    exit 2
fi

# A fresh run each time: an earlier quickstart's checkpoints are replaced.
rm -f "$run"/ckpt-*.h5 "$run"/metrics.csv

steps=${STEPS:-2500}
warmup=$(( steps < 1000 ? steps / 10 : 100 ))
echo "== train on $corpus"
build/models/charlm/charlm train --data "$corpus" --out "$run" \
    --steps "$steps" --batch-size 16 --block-size 64 \
    --n-layer 4 --n-head 4 --n-embd 128 --lr 2e-3 --min-lr 2e-4 --warmup-steps "$warmup" \
    --eval-interval 500 --eval-iters 10 --final-eval-iters 50 --log-interval 50 \
    --threads "${THREADS:-0}"

# The checkpoint with the lowest validation loss.
checkpoint=$run/ckpt-best.h5
echo "== sample from $checkpoint"
build/models/charlm/charlm sample --checkpoint "$checkpoint" \
    --length 600 --temperature 0.8 --seed 7
