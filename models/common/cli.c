#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cli_flag *cli_find(cli_flag *flags, int n_flags, const char *name) {
    for (int i = 0; i < n_flags; i++) {
        if (strcmp(flags[i].name, name) == 0) {
            return &flags[i];
        }
    }
    return NULL;
}

/* Copies text into buf with control characters written as C escapes ("\n",
 * "\t", "\x1b"), so that a default such as a newline stays on its line. */
static void escape_text(const char *text, char *buf, size_t size) {
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        char piece[8];
        if (*c == '\n') {
            snprintf(piece, sizeof piece, "\\n");
        } else if (*c == '\t') {
            snprintf(piece, sizeof piece, "\\t");
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(piece, sizeof piece, "\\x%02x", *c);
        } else {
            piece[0] = (char)*c;
            piece[1] = '\0';
        }
        size_t length = strlen(piece);
        if (n + length + 1 > size) {
            break;
        }
        memcpy(buf + n, piece, length);
        n += length;
    }
    buf[n] = '\0';
}

static void format_default(const cli_flag *f, char *buf, size_t size) {
    switch (f->type) {
    case CLI_INT:
        snprintf(buf, size, "%ld", *(const long *)f->value);
        break;
    case CLI_DOUBLE:
        snprintf(buf, size, "%g", *(const double *)f->value);
        break;
    case CLI_BOOL:
        snprintf(buf, size, "%s", *(const bool *)f->value ? "on" : "off");
        break;
    case CLI_STRING:
    case CLI_CHOICE: {
        const char *s = *(const char *const *)f->value;
        if (s == NULL) {
            snprintf(buf, size, "none");
        } else {
            escape_text(s, buf, size);
        }
        break;
    }
    }
}

void cli_print_help(const cli_flag *flags, int n_flags, const char *program,
                    const char *summary, FILE *out) {
    fprintf(out, "usage: %s [options]\n\n%s\n\noptions:\n", program, summary);
    for (int i = 0; i < n_flags; i++) {
        const cli_flag *f = &flags[i];
        char left[64];
        switch (f->type) {
        case CLI_INT: snprintf(left, sizeof left, "--%s N", f->name); break;
        case CLI_DOUBLE: snprintf(left, sizeof left, "--%s X", f->name); break;
        case CLI_STRING: snprintf(left, sizeof left, "--%s S", f->name); break;
        case CLI_BOOL: snprintf(left, sizeof left, "--[no-]%s", f->name); break;
        case CLI_CHOICE: snprintf(left, sizeof left, "--%s C", f->name); break;
        }
        char value[128];
        format_default(f, value, sizeof value);
        fprintf(out, "  %-24s %s", left, f->help);
        if (f->type == CLI_CHOICE) {
            fprintf(out, " (one of:");
            for (const char *const *c = f->choices; *c != NULL; c++) {
                fprintf(out, " %s", *c);
            }
            fprintf(out, ")");
        }
        if (f->required) {
            fprintf(out, " [required]\n");
        } else {
            /* Units are plural; a default of 1 drops the final 's' ("1 thread"). */
            const char *unit = f->unit != NULL ? f->unit : "";
            int unit_len = (int)strlen(unit);
            if (strcmp(value, "1") == 0 && unit_len > 1 && unit[unit_len - 1] == 's') {
                unit_len--;
            }
            fprintf(out, " [default: %s%s%.*s]\n", value, unit_len > 0 ? " " : "", unit_len,
                    unit);
        }
    }
    fprintf(out, "  %-24s show this help and exit\n", "--help");
}

static int set_value(cli_flag *f, const char *text, const char *program, FILE *err) {
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case CLI_INT: {
        long v = strtol(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            fprintf(err, "%s: invalid value '%s' for --%s; expected an integer\n", program, text,
                    f->name);
            return 1;
        }
        if ((double)v < f->min || (double)v > f->max) {
            fprintf(err, "%s: --%s %ld is out of range; expected %.0f to %.0f\n", program,
                    f->name, v, f->min, f->max);
            return 1;
        }
        *(long *)f->value = v;
        return 0;
    }
    case CLI_DOUBLE: {
        double v = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !isfinite(v)) {
            fprintf(err, "%s: invalid value '%s' for --%s; expected a finite number\n", program,
                    text, f->name);
            return 1;
        }
        if (v < f->min || v > f->max) {
            fprintf(err, "%s: --%s %g is out of range; expected %g to %g\n", program, f->name, v,
                    f->min, f->max);
            return 1;
        }
        *(double *)f->value = v;
        return 0;
    }
    case CLI_STRING:
        if (text[0] == '\0') {
            fprintf(err, "%s: --%s needs a non-empty value\n", program, f->name);
            return 1;
        }
        *(const char **)f->value = text;
        return 0;
    case CLI_CHOICE:
        for (const char *const *c = f->choices; *c != NULL; c++) {
            if (strcmp(*c, text) == 0) {
                *(const char **)f->value = *c;
                return 0;
            }
        }
        fprintf(err, "%s: invalid value '%s' for --%s; expected one of:", program, text, f->name);
        for (const char *const *c = f->choices; *c != NULL; c++) {
            fprintf(err, " %s", *c);
        }
        fprintf(err, "\n");
        return 1;
    case CLI_BOOL:
        break;
    }
    return 1;
}

int cli_parse(cli_flag *flags, int n_flags, int argc, char **argv, int first,
              const char *program, const char *summary, FILE *out, FILE *err) {
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_print_help(flags, n_flags, program, summary, out);
            return 2;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err, "%s: unexpected argument '%s'; options start with --; run '%s --help'\n",
                    program, arg, program);
            return 1;
        }
        char name[128];
        const char *inline_value = NULL;
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq != NULL ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (len >= sizeof name) {
            len = sizeof name - 1;
        }
        memcpy(name, arg + 2, len);
        name[len] = '\0';
        if (eq != NULL) {
            inline_value = eq + 1;
        }

        cli_flag *f = cli_find(flags, n_flags, name);
        if (f == NULL && strncmp(name, "no-", 3) == 0) {
            cli_flag *negated = cli_find(flags, n_flags, name + 3);
            if (negated != NULL && negated->type == CLI_BOOL && inline_value == NULL) {
                *(bool *)negated->value = false;
                negated->seen = true;
                continue;
            }
        }
        if (f == NULL) {
            fprintf(err, "%s: unknown option '--%s'; run '%s --help' for the list\n", program,
                    name, program);
            return 1;
        }
        if (f->seen) {
            fprintf(err, "%s: --%s is given more than once\n", program, name);
            return 1;
        }
        f->seen = true;
        if (f->type == CLI_BOOL) {
            if (inline_value != NULL) {
                fprintf(err, "%s: --%s takes no value; use --%s or --no-%s\n", program, name,
                        name, name);
                return 1;
            }
            *(bool *)f->value = true;
            continue;
        }
        const char *text = inline_value;
        if (text == NULL) {
            if (i + 1 >= argc) {
                fprintf(err, "%s: --%s needs a value\n", program, name);
                return 1;
            }
            /* "--out --steps 40" means the value was forgotten, not that the
             * folder is called "--steps"; "--name=--x" still passes it. */
            if (strncmp(argv[i + 1], "--", 2) == 0) {
                fprintf(err, "%s: --%s needs a value, but the next argument is the option '%s'; "
                        "write --%s=VALUE to pass a value that starts with --\n", program, name,
                        argv[i + 1], name);
                return 1;
            }
            text = argv[++i];
        }
        if (set_value(f, text, program, err) != 0) {
            return 1;
        }
    }
    for (int i = 0; i < n_flags; i++) {
        if (flags[i].required && !flags[i].seen) {
            fprintf(err, "%s: --%s is required; run '%s --help' for usage\n", program,
                    flags[i].name, program);
            return 1;
        }
    }
    return 0;
}

void cli_format_double_flag(char *buf, size_t size, const char *name, double value) {
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, size, "--%s %.*g", name, digits, value);
        if (strtod(buf + strlen(name) + 3, NULL) == value) {
            return;
        }
    }
}
