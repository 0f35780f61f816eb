#!/usr/bin/env bash
# Trains a small character-level GPT on real text and prints a sample.
#
# Usage: scripts/quickstart.sh [TEXT_FILE]
#
# On Debian, run as root, it first installs the missing packages (including
# the `fortunes` package, whose quotations are the default corpus). It builds
# tapegrad, trains for a few minutes on 2 cores with a line of progress every
# 50 steps, writes checkpoints to runs/quickstart/, and prints 600 generated
# characters. Any UTF-8 text file can be given instead of the fortunes.
# Environment: STEPS (default 2500) and THREADS (default: all cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/deps.sh fortunes

echo "== build (log in build/quickstart-build.log)"
mkdir -p build
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release &&
       cmake --build build -j "$(nproc)" --target charlm; } > build/quickstart-build.log 2>&1; then
    tail -n 30 build/quickstart-build.log
    echo "quickstart: the build failed; the full log is build/quickstart-build.log" >&2
    exit 1
fi

run=runs/quickstart
mkdir -p "$run"
corpus=${1:-}
if [ -z "$corpus" ]; then
    # About half a megabyte of quotations, literature and wisdom from the fortunes
    # package, without the '%' lines that separate the entries.
    corpus=$run/fortunes.txt
    fortunes=/usr/share/games/fortunes
    cat "$fortunes"/{fortunes,literature,wisdom,people,humorists,platitudes,science} \
        | grep -v '^%$' | tr -d '\b\r' > "$corpus"
fi

if [ ! -f "$corpus" ]; then
    echo "quickstart: '$corpus' is not a file; pass the path of a UTF-8 text file" >&2
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
build/models/charlm/charlm sample --checkpoint "$checkpoint" --prompt $'\n' \
    --length 600 --temperature 0.8 --seed 7
