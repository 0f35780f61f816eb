/* Command-line flags for the programs under models/.
 *
 * A program describes its flags in a table of cli_flag entries, each pointing
 * at the variable it sets, with a default already stored there, a unit and a
 * range. cli_parse fills the variables from argv and validates every value
 * against its range before the program does any work. cli_print_help lists
 * each flag with its default and unit. Messages name the flag, the value and
 * what to do.
 */
#ifndef TG_MODELS_COMMON_CLI_H
#define TG_MODELS_COMMON_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum cli_type {
    CLI_INT,     /* long, between min and max */
    CLI_DOUBLE,  /* finite double, between min and max */
    CLI_STRING,  /* const char *, pointing into argv or at the default */
    CLI_BOOL,    /* bool; "--flag" sets it, "--no-flag" clears it */
    CLI_CHOICE,  /* const char *, one of `choices` (a NULL-terminated list) */
} cli_type;

typedef struct cli_flag {
    const char *name;         /* without the leading "--" */
    cli_type type;
    void *value;              /* long *, double *, const char **, bool * */
    const char *help;         /* what the flag sets */
    const char *unit;         /* shown after the default, e.g. "steps"; may be NULL */
    double min;               /* CLI_INT and CLI_DOUBLE: inclusive range */
    double max;
    const char *const *choices; /* CLI_CHOICE */
    bool required;            /* CLI_STRING: must be given */
    bool seen;                /* set by cli_parse when the flag was given */
} cli_flag;

/* Parses argv[first..argc) into the flags. Returns 0 on success, 1 after
 * printing an error to `err` (unknown flag, missing or invalid value, value
 * out of range, missing required flag), or 2 when --help was given and the
 * help was printed to `out`. `program` is used in messages ("charlm train"). */
int cli_parse(cli_flag *flags, int n_flags, int argc, char **argv, int first,
              const char *program, const char *summary, FILE *out, FILE *err);

/* Prints usage, the summary and every flag with its default and unit. */
void cli_print_help(const cli_flag *flags, int n_flags, const char *program,
                    const char *summary, FILE *out);

/* Returns the flag with this name; NULL if none. */
cli_flag *cli_find(cli_flag *flags, int n_flags, const char *name);

/* Writes "--name value" into buf with the fewest significant digits that
 * read back as exactly value ("--lr 0.002", not "--lr 0.0020000000000000001"). */
void cli_format_double_flag(char *buf, size_t size, const char *name, double value);

#endif
