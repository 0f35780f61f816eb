/* Measurements shared by the benchmark programs: a monotonic clock, medians,
 * the machine's sgemm rate, peak resident memory, a count of heap
 * allocations and the report every benchmark prints.
 *
 * A benchmark times whole training steps after a warm-up, then fills a
 * bench_report and prints it with bench_report_print. Sizes are in bytes,
 * rates in floating-point operations per second.
 */
#ifndef TG_BENCH_COMMON_H
#define TG_BENCH_COMMON_H

#include <stddef.h>
#include <stdio.h>

/* Returns seconds on a monotonic clock. */
double bench_now_s(void);

/* Returns the median of values[0, n), n >= 1. Sorts values in place. */
double bench_median(double *values, int n);

/* One matrix product shape, C (M, N) = op(A) (M, K) op(B) (K, N), as the
 * model runs it; trans_a and trans_b as in cblas_sgemm. */
typedef struct bench_gemm_shape {
    int M, N, K;
    int trans_a, trans_b;
} bench_gemm_shape;

/* sgemm rates over a set of shapes, each the total FLOPs of one pass over
 * the shapes divided by the median time of such a pass, or by the shortest
 * time for the _best_ rates. */
typedef struct bench_sgemm_rate {
    double blas_threads_flops;  /* cblas_sgemm threaded by OpenBLAS itself */
    double split_rows_flops;    /* rows split over OpenMP threads, one sgemm each */
    double blas_threads_best_flops;
    double split_rows_best_flops;
    int threads;
} bench_sgemm_rate;

/* Times cblas_sgemm on shapes[0, n) with the current OpenMP thread count in
 * the two ways bench_sgemm_rate describes, `repeats` passes each. A rate is
 * 0 if memory for the matrices runs out. */
bench_sgemm_rate bench_measure_sgemm(const bench_gemm_shape *shapes, int n, int repeats);

/* Returns the CPU time the process has used so far, user and system, on all
 * threads, in seconds (getrusage). */
double bench_cpu_s(void);

/* Returns the process's peak resident set size in bytes (getrusage). */
size_t bench_peak_rss_bytes(void);

/* Returns the number of malloc, calloc, realloc, aligned_alloc,
 * posix_memalign and memalign calls the process has made so far, from any
 * library, counted by the wrappers in alloc_count.c. Returns -1 when the
 * program was built without them (sanitizer builds, which replace malloc
 * themselves). */
long bench_heap_calls(void);

/* What a benchmark prints. Times in milliseconds, sizes in bytes. */
typedef struct bench_report {
    const char *name;               /* e.g. "charlm GPT" */
    int threads;
    int steps;                      /* timed steps */
    int warmup_steps;
    double median_step_ms;
    double min_step_ms;
    double max_step_ms;
    double cpu_ms_per_step;         /* user + system time on all threads */
    double items_per_step;          /* tokens (or images) per step */
    const char *item_name;          /* "tokens" or "images" */
    double flops_per_step;          /* counted from the shapes */
    bench_sgemm_rate sgemm;
    size_t peak_rss_bytes;
    double tape_allocations_per_step;  /* arena chunk allocations */
    double heap_calls_per_step;        /* every malloc-family call; < 0 if not counted */
    size_t min_state_bytes;         /* parameters + gradients + optimizer moments */
    size_t min_activation_bytes;    /* activations saved for backward, counted */
    size_t arena_peak_bytes;
    size_t param_state_bytes;       /* parameters + gradients + optimizer moments, as held */
} bench_report;

/* Prints the report as "key value unit" lines, then one JSON object on a
 * line of its own that scripts can parse. */
void bench_report_print(const bench_report *r, FILE *out);

#endif
