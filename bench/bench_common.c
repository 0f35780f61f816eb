#define _POSIX_C_SOURCE 200809L
#include "bench_common.h"

#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, int n) {
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    if (n % 2 == 1) {
        return values[n / 2];
    }
    return 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/* ---- sgemm rate ----------------------------------------------------------- */

/* Runs rows [r0, r1) of the product of one shape. A is stored (M, K), or
 * (K, M) when transposed; B (K, N), or (N, K) when transposed. */
static void sgemm_rows(const bench_gemm_shape *s, int r0, int r1, const float *a,
                       const float *b, float *c) {
    int lda = s->trans_a ? s->M : s->K;
    int ldb = s->trans_b ? s->K : s->N;
    const float *a_rows = s->trans_a ? a + r0 : a + (size_t)r0 * (size_t)lda;
    cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans,
                s->trans_b ? CblasTrans : CblasNoTrans, r1 - r0, s->N, s->K, 1.0f, a_rows, lda,
                b, ldb, 0.0f, c + (size_t)r0 * (size_t)s->N, s->N);
}

/* Returns the seconds of one pass over every shape. */
static double sgemm_pass_s(const bench_gemm_shape *shapes, int n, bool split_rows,
                           const float *a, const float *b, float *c) {
    double start = bench_now_s();
    for (int i = 0; i < n; i++) {
        const bench_gemm_shape *s = &shapes[i];
        if (!split_rows) {
            sgemm_rows(s, 0, s->M, a, b, c);
            continue;
        }
        /* Inside the parallel region OpenBLAS's OpenMP build runs each call
         * on the calling thread alone. */
#pragma omp parallel
        {
            int t = omp_get_thread_num();
            int nt = omp_get_num_threads();
            int r0 = (int)((long)s->M * t / nt);
            int r1 = (int)((long)s->M * (t + 1) / nt);
            if (r1 > r0) {
                sgemm_rows(s, r0, r1, a, b, c);
            }
        }
    }
    return bench_now_s() - start;
}

/* Times `repeats` passes after one untimed pass and returns the FLOP rate of
 * the median pass, and of the fastest in *best_flops. */
static double median_pass_flops(const bench_gemm_shape *shapes, int n, int repeats,
                                bool split_rows, const float *a, const float *b, float *c,
                                double *best_flops) {
    double flops = 0.0;
    for (int i = 0; i < n; i++) {
        flops += 2.0 * shapes[i].M * shapes[i].N * shapes[i].K;
    }
    double *times = malloc((size_t)repeats * sizeof *times);
    if (times == NULL) {
        *best_flops = 0.0;
        return 0.0;
    }
    sgemm_pass_s(shapes, n, split_rows, a, b, c);
    double best_s = 0.0;
    for (int r = 0; r < repeats; r++) {
        times[r] = sgemm_pass_s(shapes, n, split_rows, a, b, c);
        best_s = r == 0 || times[r] < best_s ? times[r] : best_s;
    }
    double median_s = bench_median(times, repeats);
    free(times);
    *best_flops = flops / best_s;
    return flops / median_s;
}

bench_sgemm_rate bench_measure_sgemm(const bench_gemm_shape *shapes, int n, int repeats) {
    size_t max_a = 0;
    size_t max_b = 0;
    size_t max_c = 0;
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)shapes[i].M * (size_t)shapes[i].K;
        size_t b = (size_t)shapes[i].K * (size_t)shapes[i].N;
        size_t c = (size_t)shapes[i].M * (size_t)shapes[i].N;
        max_a = a > max_a ? a : max_a;
        max_b = b > max_b ? b : max_b;
        max_c = c > max_c ? c : max_c;
    }
    float *a = malloc(max_a * sizeof *a);
    float *b = malloc(max_b * sizeof *b);
    float *c = malloc(max_c * sizeof *c);
    bench_sgemm_rate rate = {.threads = omp_get_max_threads()};
    if (a == NULL || b == NULL || c == NULL) {
        free(a);
        free(b);
        free(c);
        return rate;
    }
    for (size_t i = 0; i < max_a; i++) {
        a[i] = (float)(i % 17) * 0.01f - 0.08f;
    }
    for (size_t i = 0; i < max_b; i++) {
        b[i] = (float)(i % 13) * 0.01f - 0.06f;
    }
    rate.blas_threads_flops =
        median_pass_flops(shapes, n, repeats, false, a, b, c, &rate.blas_threads_best_flops);
    rate.split_rows_flops =
        median_pass_flops(shapes, n, repeats, true, a, b, c, &rate.split_rows_best_flops);
    free(a);
    free(b);
    free(c);
    return rate;
}

double bench_cpu_s(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + 1e-6 * (double)usage.ru_utime.tv_usec +
           (double)usage.ru_stime.tv_sec + 1e-6 * (double)usage.ru_stime.tv_usec;
}

size_t bench_peak_rss_bytes(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (size_t)usage.ru_maxrss * 1024;  /* Linux reports kilobytes */
}

/* ---- Report --------------------------------------------------------------- */

static double mib(size_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

void bench_report_print(const bench_report *r, FILE *out) {
    double step_s = r->median_step_ms / 1e3;
    double achieved = r->flops_per_step / step_s;
    double sgemm_best = r->sgemm.blas_threads_flops > r->sgemm.split_rows_flops
                            ? r->sgemm.blas_threads_flops
                            : r->sgemm.split_rows_flops;
    size_t min_bytes = r->min_state_bytes + r->min_activation_bytes;
    size_t used_bytes = r->param_state_bytes + r->arena_peak_bytes;

    fprintf(out, "benchmark          %s\n", r->name);
    fprintf(out, "threads            %d\n", r->threads);
    fprintf(out, "step time          %.2f ms median (min %.2f, max %.2f) over %d steps after %d "
            "warm-up steps\n", r->median_step_ms, r->min_step_ms, r->max_step_ms, r->steps,
            r->warmup_steps);
    fprintf(out, "CPU time           %.2f ms per step, user and system on all threads\n",
            r->cpu_ms_per_step);
    fprintf(out, "throughput         %.0f %s/s\n", r->items_per_step / step_s, r->item_name);
    fprintf(out, "work               %.3f GFLOP per step (matrix products, counted from the "
            "shapes)\n", r->flops_per_step / 1e9);
    fprintf(out, "achieved           %.1f GFLOP/s, %.2f of the best sgemm rate below\n",
            achieved / 1e9, achieved / sgemm_best);
    fprintf(out, "sgemm              %.1f GFLOP/s threaded by OpenBLAS, %.1f GFLOP/s with rows "
            "split over %d OpenMP threads (the step's shapes)\n",
            r->sgemm.blas_threads_flops / 1e9, r->sgemm.split_rows_flops / 1e9,
            r->sgemm.threads);
    fprintf(out, "sgemm best pass    %.1f GFLOP/s threaded by OpenBLAS, %.1f GFLOP/s with rows "
            "split (the fastest timed pass, least disturbed by other processes)\n",
            r->sgemm.blas_threads_best_flops / 1e9, r->sgemm.split_rows_best_flops / 1e9);
    fprintf(out, "peak RSS           %.1f MiB\n", mib(r->peak_rss_bytes));
    if (r->heap_calls_per_step >= 0) {
        fprintf(out, "heap allocations   %.2f tape arena chunks and %.2f malloc-family calls "
                "per step\n", r->tape_allocations_per_step, r->heap_calls_per_step);
    } else {
        fprintf(out, "heap allocations   %.2f tape arena chunks per step (malloc calls not "
                "counted in this build)\n", r->tape_allocations_per_step);
    }
    fprintf(out, "step memory min    %.1f MiB: %.1f parameters, gradients and moments + %.1f "
            "activations saved for backward\n", mib(min_bytes), mib(r->min_state_bytes),
            mib(r->min_activation_bytes));
    fprintf(out, "step memory used   %.1f MiB: %.1f parameters, gradients and moments + %.1f "
            "arena peak, %.2fx the minimum\n", mib(used_bytes), mib(r->param_state_bytes),
            mib(r->arena_peak_bytes), (double)used_bytes / (double)min_bytes);

    fprintf(out, "{\"benchmark\": \"%s\", \"threads\": %d, \"steps\": %d, "
            "\"median_ms_per_step\": %.3f, \"min_ms_per_step\": %.3f, \"cpu_ms_per_step\": %.3f, "
            "\"%s_per_s\": %.1f, \"gflop_per_step\": %.4f, \"achieved_gflops\": %.2f, "
            "\"sgemm_blas_gflops\": %.2f, \"sgemm_split_gflops\": %.2f, "
            "\"sgemm_blas_best_gflops\": %.2f, \"sgemm_split_best_gflops\": %.2f, "
            "\"peak_rss_bytes\": %zu, \"tape_allocations_per_step\": %.3f, "
            "\"heap_calls_per_step\": %.3f, \"min_step_bytes\": %zu, \"used_step_bytes\": %zu, "
            "\"arena_peak_bytes\": %zu}\n",
            r->name, r->threads, r->steps, r->median_step_ms, r->min_step_ms, r->cpu_ms_per_step,
            r->item_name,
            r->items_per_step / step_s, r->flops_per_step / 1e9, achieved / 1e9,
            r->sgemm.blas_threads_flops / 1e9, r->sgemm.split_rows_flops / 1e9,
            r->sgemm.blas_threads_best_flops / 1e9, r->sgemm.split_rows_best_flops / 1e9,
            r->peak_rss_bytes, r->tape_allocations_per_step, r->heap_calls_per_step, min_bytes,
            used_bytes, r->arena_peak_bytes);
    fflush(out);
}
