/* Fuzz target for command-line parsing (models/common/cli.h).
 *
 * The input, split at NUL bytes, is the argv after the program name (an empty
 * input gives no arguments, and "\0" one empty argument). It is parsed
 * against a flag table with every flag type, a required string, ranges that
 * include negative numbers and a choice list. Output and errors go to
 * /dev/null. The driver checks that cli_parse returns 0, 1 or 2 and leaves
 * the arguments unchanged, that after a successful parse
 *   - every integer and double lies in its range and every double is finite;
 *   - a choice points at an entry of its list and a string into argv or at
 *     its default, and the required string was given;
 * and that after any parse a flag that was not given keeps its default.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fuzz_util.h"

#define MAX_ARGS 256

static const char *const devices[] = {"cpu", "gpu", "auto", NULL};
static const char default_out[] = "runs";

typedef struct settings {
    long steps;
    long offset;
    double lr;
    double dropout;
    const char *data;
    const char *out;
    bool verbose;
    bool shuffle;
    const char *device;
} settings;

static const settings defaults = {100, 0, 3e-4, 0.0, NULL, default_out, false, true, "cpu"};

static FILE *null_stream(void) {
    static FILE *stream;
    if (stream == NULL) {
        stream = fopen("/dev/null", "w");
        FUZZ_CHECK(stream != NULL, "cannot open /dev/null");
    }
    return stream;
}

/* Fills the flag table that points at `s`. Returns the number of flags. */
static int make_flags(cli_flag *flags, settings *s) {
    const cli_flag table[] = {
        {"steps", CLI_INT, &s->steps, "optimizer steps", "steps", 1, 1e6, NULL, false, false},
        {"offset", CLI_INT, &s->offset, "signed offset", NULL, -1e15, 1e15, NULL, false, false},
        {"lr", CLI_DOUBLE, &s->lr, "learning rate", NULL, 0, 10, NULL, false, false},
        {"dropout", CLI_DOUBLE, &s->dropout, "dropout probability", NULL, -0.5, 0.99, NULL,
         false, false},
        {"data", CLI_STRING, &s->data, "training text", NULL, 0, 0, NULL, true, false},
        {"out", CLI_STRING, &s->out, "run directory", NULL, 0, 0, NULL, false, false},
        {"verbose", CLI_BOOL, &s->verbose, "print more", NULL, 0, 0, NULL, false, false},
        {"shuffle", CLI_BOOL, &s->shuffle, "shuffle the data", NULL, 0, 0, NULL, false, false},
        {"device", CLI_CHOICE, &s->device, "where to run", NULL, 0, 0, devices, false, false},
    };
    int n = (int)(sizeof table / sizeof table[0]);
    memcpy(flags, table, sizeof table);
    return n;
}

static bool points_into(const char *p, const char *buffer, size_t size) {
    return p >= buffer && p < buffer + size;
}

static void check_success(const cli_flag *flags, int n_flags, const settings *s,
                          const char *buffer, size_t size) {
    for (int i = 0; i < n_flags; i++) {
        const cli_flag *f = &flags[i];
        if (f->type == CLI_INT) {
            long v = *(const long *)f->value;
            FUZZ_CHECK((double)v >= f->min && (double)v <= f->max, "--%s %ld is outside [%g, %g]",
                       f->name, v, f->min, f->max);
        } else if (f->type == CLI_DOUBLE) {
            double v = *(const double *)f->value;
            FUZZ_CHECK(isfinite(v) && v >= f->min && v <= f->max, "--%s %g is outside [%g, %g]",
                       f->name, v, f->min, f->max);
        }
        FUZZ_CHECK(!f->required || f->seen, "required --%s was not given", f->name);
    }
    bool device_listed = false;
    for (const char *const *c = devices; *c != NULL; c++) {
        device_listed = device_listed || s->device == *c;
    }
    FUZZ_CHECK(device_listed, "--device points outside its choices");
    FUZZ_CHECK(s->data != NULL && s->data[0] != '\0' && points_into(s->data, buffer, size),
               "--data does not point at a non-empty argument");
    FUZZ_CHECK(s->out == default_out || (s->out[0] != '\0' && points_into(s->out, buffer, size)),
               "--out points neither at its default nor at a non-empty argument");
}

/* Checks that every flag that was not given kept its default. */
static void check_defaults_kept(const cli_flag *flags, const settings *s) {
    const struct {
        const char *name;
        bool kept;
    } kept[] = {
        {"steps", s->steps == defaults.steps},
        {"offset", s->offset == defaults.offset},
        {"lr", s->lr == defaults.lr},
        {"dropout", s->dropout == defaults.dropout},
        {"data", s->data == defaults.data},
        {"out", s->out == defaults.out},
        {"verbose", s->verbose == defaults.verbose},
        {"shuffle", s->shuffle == defaults.shuffle},
        {"device", s->device == defaults.device},
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const cli_flag *f = &flags[i];
        FUZZ_CHECK(strcmp(f->name, kept[i].name) == 0, "flag table order changed");
        FUZZ_CHECK(f->seen || kept[i].kept, "--%s was not given but changed", f->name);
    }
}

int fuzz_cli_input(const uint8_t *data, size_t size) {
    /* The arguments live in one NUL-terminated copy of the input. */
    char *buffer = malloc(size + 1);
    FUZZ_CHECK(buffer != NULL, "out of memory");
    memcpy(buffer, data, size);
    buffer[size] = '\0';
    static char program[] = "fuzz";
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = program;
    for (size_t start = 0; start < size && argc < MAX_ARGS;) {
        argv[argc++] = buffer + start;
        start += strlen(buffer + start) + 1;
    }
    argv[argc] = NULL;

    settings s = defaults;
    cli_flag flags[16];
    int n_flags = make_flags(flags, &s);
    FILE *sink = null_stream();
    int rc = cli_parse(flags, n_flags, argc, argv, 1, "fuzz", "Fuzzes the flag parser.", sink,
                       sink);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == 2, "cli_parse returned %d", rc);
    check_defaults_kept(flags, &s);
    if (rc == 0) {
        check_success(flags, n_flags, &s, buffer, size + 1);
    }
    FUZZ_CHECK(memcmp(buffer, data, size) == 0, "cli_parse changed its arguments");
    cli_print_help(flags, n_flags, "fuzz", "Fuzzes the flag parser.", sink);
    free(buffer);
    return rc;
}

#ifdef TG_FUZZ_ENTRY_POINT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_cli_input(data, size);
    return 0;
}
#endif
