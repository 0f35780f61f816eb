#!/usr/bin/env python3
"""Sort the samples of a `perf record --call-graph dwarf` profile of a
benchmark into the parts of a training step, e.g.

    perf record --call-graph dwarf,16384 -F 500 -o gpt.data \\
        build/bench/bench_gpt --data input.txt --threads 1 --steps 20
    bench/profile_breakdown.py gpt.data

Each sample goes to the first category that matches a function on its call
stack, walking from the sampled function towards main. So a memset under a
gradient allocation counts as gradient zeroing, and an sgemm kernel counts
for the op that called it. Only samples taken during training steps count:
under train_step (bench_gpt) or ddpm_train_step (bench_ddpm), or on an
OpenMP or OpenBLAS worker thread. So the sgemm rate measurement and start-up
are left out. Prints one line per category with its share of those samples,
on all threads together.
"""
import argparse
import collections
import re
import subprocess
import sys

# (category, pattern on a function name), tried in this order on every frame.
CATEGORIES = [
    ("zeroing new gradient buffers", r"^(tg_arena_calloc|tensor_grad|zero_scalars|"
                                     r"tg_node_input_grad)"),
    ("tape reset, parameter gradient zeroing", r"^(tg_tape_reset|tg_arena_reset|"
                                               r"tg_param_list_zero_grad|tg_tensor_zero_grad)$"),
    ("matrix products (linear layers)", r"^(linear_|tg_linear|tg__linear|matmul_|tg_matmul|"
                                        r"second_layer_backward_task)"),
    ("attention", r"^(attention_|tg_self_attention|tg_attention|softmax_row|"
                  r"softmax_backward_row|transpose_rows)"),
    ("LayerNorm", r"^(layernorm|tg_layernorm|row_backward)"),
    ("GELU", r"^(gelu_forward|gelu_backward_in_place|gelu_tanh|gelu_exact|tg__gelu|tg_gelu$)"),
    ("adds (residual and broadcast)", r"^(binary|tg_add|residual|sum_repeats|"
                                      r"gelu_mlp_backward\._omp_fn)"),
    ("cross-entropy", r"^(cross_entropy|tg_cross_entropy)"),
    ("MSE loss", r"^(mse_|tg_mse)"),
    ("timestep embedding, SiLU", r"^(silu_|tg_silu|tg_timestep_embedding|tg_sinusoid)"),
    ("patchify, unpatchify", r"^(patchify|permute_|tg_permute|tg_reshape|copy_rows)"),
    ("embeddings", r"^(embedding|tg_embedding|tg_pos_encoding)"),
    ("gradient clipping", r"^(tg_clip_grad_norm|sum_squares|chunk_sum_squares|scale)"),
    ("AdamW", r"^(adam_|tg_optimizer_step)"),
    ("batch sampling and noising", r"^(tg_text_sampler|tg_epoch_sampler|ddpm_data_gather|"
                                   r"ddpm_q_sample|tg_rng_)"),
    ("EMA", r"^ddpm_run_update_ema"),
    ("GELU MLP, other", r"^gelu_mlp"),
]
# Tried only when no frame matches CATEGORIES: work on a worker thread whose
# stack does not show which op started it.
FALLBACK = [
    ("sgemm on an OpenBLAS worker thread", r"^(sgemm_|inner_thread|exec_blas)"),
    ("OpenMP start-up", r"^(gomp_|GOMP_)"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
COMPILED_FALLBACK = [(name, re.compile(pattern)) for name, pattern in FALLBACK]
# A sample whose innermost function is one of these is a thread waiting at an
# OpenMP barrier or for work, whichever op it waits in.
WAITING = re.compile(r"^(gomp_|do_spin|do_wait|futex_|__futex|syscall)")
FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.+?)\s+\((.*)\)\s*$")
# Name given to frames inside a libgomp without symbols (Debian's is
# stripped), which perf prints as [unknown]: its barriers and the idle loop
# of its worker threads.
GOMP_UNKNOWN = "gomp_[unknown]"


def frames_of(block):
    """Function names of one sample, leaf first."""
    names = []
    for line in block[1:]:
        m = FRAME.match(line)
        if m is None:
            continue
        name = m.group(1).split("+0x")[0]
        name = re.sub(r"\s*\(inlined\)$", "", name)
        if name == "[unknown]" and "libgomp" in m.group(2):
            name = GOMP_UNKNOWN
        names.append(name)
    return names


def refine(category, names):
    """Moves the fused MLP's gemms, whose task functions are inlined out of
    the call stack, to the matrix products."""
    if category == "GELU MLP, other" and any(n.startswith("cblas_sgemm") for n in names):
        return "matrix products (linear layers)"
    return category


def categorise(names):
    in_step = any(n.endswith("train_step") for n in names)
    on_worker = any(n.startswith(("gomp_thread_start", "blas_thread_server")) for n in names)
    on_worker = on_worker or ("start_thread" in names and GOMP_UNKNOWN in names)
    if not in_step and not on_worker:
        return None
    if not in_step and any(n == "bench_measure_sgemm" for n in names):
        return None
    if names and WAITING.match(names[0]):
        return "OpenMP waiting"
    for table in (COMPILED, COMPILED_FALLBACK):
        for name in names:
            for category, pattern in table:
                if pattern.search(name):
                    return refine(category, names)
    if not in_step:
        return "OpenMP start-up"
    return "other (step glue, kernel)"


def read_samples(path):
    out = subprocess.run(["perf", "script", "-i", path], check=True, capture_output=True,
                         text=True).stdout
    block = []
    for line in out.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("perf_data", help="perf.data recorded with --call-graph dwarf")
    args = parser.parse_args(argv)
    counts = collections.Counter()
    for block in read_samples(args.perf_data):
        category = categorise(frames_of(block))
        if category is not None:
            counts[category] += 1
    total = sum(counts.values())
    if total == 0:
        print("no samples inside training steps; record with --call-graph dwarf", file=sys.stderr)
        return 1
    for category, n in counts.most_common():
        print(f"{category:40s} {100.0 * n / total:5.1f} %  ({n} samples)")
    print(f"{'total':40s} 100.0 %  ({total} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
