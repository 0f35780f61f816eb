#!/usr/bin/python3
"""Plot a training run's loss curves from its metrics.csv to a PNG file.

Usage: scripts/plot_metrics.py RUN_DIR/metrics.csv [OUT.png]

metrics.csv is written by `charlm train` and `ddpm train`: one row per step
with split "batch" (the training batch loss), and rows with split "train"
and "val" at each evaluation. Needs matplotlib (Debian: python3-matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    out = argv[2] if len(argv) > 2 else path.rsplit(".", 1)[0] + ".png"
    series = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                series.setdefault(row["split"], []).append((int(row["step"]), float(row["loss"])))
    except (OSError, KeyError, ValueError) as e:
        print(f"plot_metrics: cannot read {path}: {e}", file=sys.stderr)
        return 1
    if not series:
        print(f"plot_metrics: {path} has no rows", file=sys.stderr)
        return 1
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"batch": dict(alpha=0.35, lw=0.8), "train": dict(marker="o"), "val": dict(marker="s")}
    labels = {"batch": "training batch", "train": "train (eval)", "val": "validation (eval)"}
    for split, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], label=labels.get(split, split),
                **styles.get(split, {}))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(path)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
