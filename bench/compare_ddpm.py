#!/usr/bin/env python3
"""Run bench_ddpm and a PyTorch reference trainer alternately on the same
configuration and print the ratios of their training images per second and
peak RSS.

    bench/compare_ddpm.py --data DIR --reference path/to/ref_ddpm.py

DIR is a folder of IDX image files (Fashion-MNIST) that both programs train
on. The reference is a DDPM trainer for the same patch Transformer that
prints one JSON line with median_ms_per_step, timing the same step (batch,
timesteps and noise, forward, backward, clip, AdamW) and leaving out its
first 10 steps. It runs under --python, an interpreter with torch, with
--arch dit and its defaults, which are those of `ddpm train`. After training
it also scores 1024 validation images and draws one DDIM sample, which this
script keeps as small as the reference allows. Each round runs, for every
thread count, our benchmark and then the reference, so both see the same
machine load. The reference sets GOMP_SPINCOUNT=1000 for itself unless the
environment sets it, and by default our benchmark gets the same value.

The summary gives, per thread count, the median over the rounds of each
program's median step time and the ratio of their images per second. The
ratio is ours over PyTorch's, so above 1 means tapegrad is faster. Then come
the speed-up from the first to the last thread count, and the peak RSS of
each process (from wait4) with their ratio.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 64


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="folder of IDX image files both programs train on")
    p.add_argument("--reference", required=True, help="the PyTorch trainer (ref_ddpm.py)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter with torch installed")
    p.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench_ddpm"),
                   help="the bench_ddpm executable")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=3, help="runs of each program per thread count")
    p.add_argument("--steps", type=int, default=30,
                   help="timed steps per run (the reference runs 10 more, which it leaves out)")
    p.add_argument("--spin-count", default="1000",
                   help="GOMP_SPINCOUNT for tapegrad, the value the reference sets for itself "
                        "unless the environment has one; 'default' leaves libgomp's own")
    p.add_argument("--out", default="/tmp/compare_ddpm_reference",
                   help="folder for the reference's outputs (result.json, one sample)")
    return p.parse_args(argv)


def run_with_rusage(cmd, env=None):
    """Runs cmd to completion and returns (last JSON line, peak RSS in bytes)."""
    # stderr goes to a file, so that neither pipe can fill up while the other
    # is read. wait4 then reaps the process and returns its resource usage.
    with tempfile.TemporaryFile(mode="w+") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, text=True,
                                env=env)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read()
    if proc.returncode != 0:
        sys.exit(f"compare_ddpm: {' '.join(cmd)} failed with exit status {proc.returncode}:\n"
                 f"{err.strip()}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"compare_ddpm: {' '.join(cmd)} printed no JSON result line")
    return json.loads(lines[-1]), usage.ru_maxrss * 1024


def ours_cmd(args, threads):
    return [args.bench, "--data", args.data, "--threads", str(threads), "--steps",
            str(args.steps)]


def reference_cmd(args, threads):
    return [args.python, args.reference, "--arch", "dit", "--data-dir", args.data,
            "--threads", str(threads), "--batch-size", str(BATCH), "--steps",
            str(args.steps + 10), "--log-interval", "1000000", "--samples", "1",
            "--no-ddpm-sampling", "--out", args.out]


def mib(n):
    return n / (1024 * 1024)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    thread_counts = [int(t) for t in args.threads.split(",")]
    for path, what in ((args.bench, "--bench"), (args.reference, "--reference"),
                       (args.data, "--data")):
        if not os.path.exists(path):
            sys.exit(f"compare_ddpm: {what} {path} not found")

    ours_env = dict(os.environ)
    # bench_ddpm sets GOMP_SPINCOUNT=1000 for itself when the environment has
    # no value, so libgomp's default is passed as a number: 300000 spins when
    # OMP_WAIT_POLICY is not set (GCC's libgomp manual, GOMP_SPINCOUNT).
    spin_count = "300000" if args.spin_count == "default" else args.spin_count
    ours_env.setdefault("GOMP_SPINCOUNT", spin_count)
    print(f"tapegrad runs with GOMP_SPINCOUNT={ours_env['GOMP_SPINCOUNT']}", flush=True)
    results = {t: {"ours": [], "torch": [], "ours_rss": [], "torch_rss": []}
               for t in thread_counts}
    for r in range(args.rounds):
        for t in thread_counts:
            ours, ours_rss = run_with_rusage(ours_cmd(args, t), ours_env)
            ref, ref_rss = run_with_rusage(reference_cmd(args, t))
            res = results[t]
            res["ours"].append(ours["median_ms_per_step"])
            res["torch"].append(ref["median_ms_per_step"])
            res["ours_rss"].append(ours_rss)
            res["torch_rss"].append(ref_rss)
            print(f"round {r + 1}/{args.rounds}  threads {t}:  tapegrad "
                  f"{ours['median_ms_per_step']:7.2f} ms  PyTorch {ref['median_ms_per_step']:7.2f} ms"
                  f"  images/s ratio {ref['median_ms_per_step'] / ours['median_ms_per_step']:.2f}"
                  f"  peak RSS {mib(ours_rss):.0f} / {mib(ref_rss):.0f} MiB", flush=True)

    print(f"\nsummary (medians over rounds, batch {BATCH})")
    print(f"{'threads':>7}  {'tapegrad ms':>11}  {'PyTorch ms':>10}  {'tapegrad img/s':>14}  "
          f"{'PyTorch img/s':>13}  {'img/s ratio':>11}  {'tapegrad RSS':>12}  "
          f"{'PyTorch RSS':>11}  {'RSS ratio':>9}")
    medians = {}
    for t in thread_counts:
        res = results[t]
        ours = statistics.median(res["ours"])
        ref = statistics.median(res["torch"])
        ours_rss = max(res["ours_rss"])
        ref_rss = max(res["torch_rss"])
        medians[t] = (ours, ref)
        print(f"{t:>7}  {ours:11.2f}  {ref:10.2f}  {1e3 * BATCH / ours:14.1f}  "
              f"{1e3 * BATCH / ref:13.1f}  {ref / ours:11.2f}  {mib(ours_rss):8.1f} MiB  "
              f"{mib(ref_rss):7.1f} MiB  {ours_rss / ref_rss:9.3f}")
    if len(thread_counts) > 1:
        first, last = thread_counts[0], thread_counts[-1]
        print(f"speed-up from {first} to {last} threads: tapegrad "
              f"{medians[first][0] / medians[last][0]:.2f}x, PyTorch "
              f"{medians[first][1] / medians[last][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
