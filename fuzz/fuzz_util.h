/* Helpers shared by the fuzz drivers: scratch files for parsers that read a
 * path, and invariant checks that turn a broken contract into a crash that
 * libFuzzer records.
 *
 * The drivers (fuzz_checkpoint.c, fuzz_idx.c, fuzz_text.c, fuzz_cli.c) are
 * also linked into tests/test_fuzz_regressions.c, which replays the committed
 * crash inputs through them, so they use no libFuzzer API outside
 * LLVMFuzzerTestOneInput.
 */
#ifndef TG_FUZZ_FUZZ_UTIL_H
#define TG_FUZZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/status.h"

/* Writes `size` bytes to this process's scratch file named after `tag` and
 * returns its path. The file is created under $TMPDIR (or /tmp) on first use
 * and removed at exit. Aborts if writing fails, because then no input can be
 * judged. */
const char *fuzz_write_scratch(const char *tag, const void *data, size_t size);

/* Prints where an invariant failed and why, then aborts. */
void fuzz_fail(const char *file, int line, const char *expression, const char *format, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Aborts with the message if `condition` is false. */
#define FUZZ_CHECK(condition, ...)                                                \
    do {                                                                          \
        if (!(condition)) {                                                       \
            fuzz_fail(__FILE__, __LINE__, #condition, __VA_ARGS__);               \
        }                                                                         \
    } while (0)

/* Checks the contract every failing library call keeps: a known error code and
 * a non-empty message in tg_last_error(). `call` names the call in the abort
 * message. */
void fuzz_check_error(tg_status status, const char *call);

/* Run one input through a parser, check the contracts that its header
 * promises, and abort if one is broken; each file lists what it checks.
 * They return what a program would see, for the regression test: the first
 * error status of the checkpoint reader's and the IDX loaders' calls (TG_OK
 * if none failed), the status of tg_text_corpus_from_buffer, and cli_parse's
 * return value (0, 1 or 2). */
tg_status fuzz_checkpoint_input(const uint8_t *data, size_t size);
tg_status fuzz_idx_input(const uint8_t *data, size_t size);
tg_status fuzz_text_input(const uint8_t *data, size_t size);
int fuzz_cli_input(const uint8_t *data, size_t size);

/* Writes a valid checkpoint with the layout that fuzz_checkpoint_input reads,
 * for the seed corpus. */
tg_status fuzz_checkpoint_write_seed(const char *path, const char *kind);

#endif
