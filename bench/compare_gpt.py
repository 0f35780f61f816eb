#!/usr/bin/env python3
"""Run bench_gpt and a PyTorch reference trainer alternately on the same
configuration and print the ratios of their median step times and peak RSS.

    bench/compare_gpt.py --data input.txt --reference path/to/ref_gpt.py

The reference is a nanoGPT-style trainer that prints one JSON line with
median_ms_per_iter, timing the same step (batch sampling, forward, backward,
clip, AdamW) and leaving out its first 10 iterations. It runs under
--python, an interpreter with torch. Each round runs, for every thread
count, our benchmark and then the reference, so both see the same machine
load. The reference sets GOMP_SPINCOUNT=1000 for itself unless the
environment sets it, and by default our benchmark gets the same value.
A round's figures for one thread count are one pair, printed with
the 1-minute load average after it. The summary gives the median over the
rounds of each program's median step time, the ratio of those medians, the
median of the pairs' ratios, the speed-up from the first to the last thread
count, and the peak RSS of each process (from wait4).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="text file both programs train on")
    p.add_argument("--reference", required=True, help="the PyTorch trainer (ref_gpt.py)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="interpreter with torch installed")
    p.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench_gpt"),
                   help="the bench_gpt executable")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=3, help="runs of each program per thread count")
    p.add_argument("--steps", type=int, default=50,
                   help="timed steps per run (the reference runs 10 more, which it leaves out)")
    p.add_argument("--spin-count", default="1000",
                   help="GOMP_SPINCOUNT for tapegrad, the value the reference sets for itself "
                        "unless the environment has one; 'default' gives libgomp's own, 300000")
    return p.parse_args(argv)


def run_with_rusage(cmd, env=None):
    """Runs cmd to completion and returns (last JSON line, peak RSS in bytes)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"compare_gpt: {' '.join(cmd)} failed with exit status {code}:\n{err.strip()}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"compare_gpt: {' '.join(cmd)} printed no JSON result line")
    return json.loads(lines[-1]), usage.ru_maxrss * 1024


def ours_cmd(args, threads):
    return [args.bench, "--data", args.data, "--threads", str(threads), "--steps",
            str(args.steps)]


def reference_cmd(args, threads):
    return [args.python, args.reference, "--data", args.data, "--threads", str(threads),
            "--max-iters", str(args.steps + 10), "--eval-interval", "0", "--final-eval-iters",
            "1", "--log-interval", "1000000"]


def mib(n):
    return n / (1024 * 1024)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    thread_counts = [int(t) for t in args.threads.split(",")]
    for path, what in ((args.bench, "--bench"), (args.reference, "--reference"),
                       (args.data, "--data")):
        if not os.path.exists(path):
            sys.exit(f"compare_gpt: {what} {path} not found")

    ours_env = dict(os.environ)
    # bench_gpt sets GOMP_SPINCOUNT=1000 for itself when the environment has
    # no value, so libgomp's default is passed as a number: 300000 spins when
    # OMP_WAIT_POLICY is not set (GCC's libgomp manual, GOMP_SPINCOUNT).
    spin_count = "300000" if args.spin_count == "default" else args.spin_count
    ours_env.setdefault("GOMP_SPINCOUNT", spin_count)
    print(f"tapegrad runs with GOMP_SPINCOUNT={ours_env['GOMP_SPINCOUNT']}", flush=True)
    results = {t: {"ours": [], "torch": [], "ours_rss": [], "torch_rss": [], "ratio": []}
               for t in thread_counts}
    for r in range(args.rounds):
        for t in thread_counts:
            ours, ours_rss = run_with_rusage(ours_cmd(args, t), ours_env)
            ref, ref_rss = run_with_rusage(reference_cmd(args, t))
            res = results[t]
            res["ours"].append(ours["median_ms_per_step"])
            res["torch"].append(ref["median_ms_per_iter"])
            res["ours_rss"].append(ours_rss)
            res["torch_rss"].append(ref_rss)
            res["ratio"].append(ours["median_ms_per_step"] / ref["median_ms_per_iter"])
            print(f"round {r + 1}/{args.rounds}  threads {t}:  tapegrad "
                  f"{ours['median_ms_per_step']:7.2f} ms  PyTorch {ref['median_ms_per_iter']:7.2f} ms"
                  f"  ratio {res['ratio'][-1]:.3f}"
                  f"  peak RSS {mib(ours_rss):.0f} / {mib(ref_rss):.0f} MiB"
                  f"  load {os.getloadavg()[0]:.1f}", flush=True)

    print("\nsummary (medians over rounds; 'pair ratio' is the median of the rounds' ratios)")
    print(f"{'threads':>7}  {'tapegrad ms':>11}  {'PyTorch ms':>10}  {'ratio':>6}  "
          f"{'pair ratio':>10}  {'tapegrad RSS':>12}  {'PyTorch RSS':>11}  {'RSS ratio':>9}")
    medians = {}
    for t in thread_counts:
        res = results[t]
        ours = statistics.median(res["ours"])
        ref = statistics.median(res["torch"])
        ours_rss = max(res["ours_rss"])
        ref_rss = max(res["torch_rss"])
        medians[t] = (ours, ref)
        pair_ratio = statistics.median(res["ratio"])
        print(f"{t:>7}  {ours:11.2f}  {ref:10.2f}  {ours / ref:6.3f}  {pair_ratio:10.3f}"
              f"  {mib(ours_rss):9.1f} MiB  {mib(ref_rss):8.1f} MiB  {ours_rss / ref_rss:9.3f}")
    if len(thread_counts) > 1:
        first, last = thread_counts[0], thread_counts[-1]
        print(f"speed-up from {first} to {last} threads: tapegrad "
              f"{medians[first][0] / medians[last][0]:.2f}x, PyTorch "
              f"{medians[first][1] / medians[last][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
