#define _POSIX_C_SOURCE 200809L

#include "metrics_csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define METRICS_HEADER "step,split,loss,lr,grad_norm,ms_per_step,tokens_per_s\n"

/* Rewrites an existing metrics.csv with its header and the rows up to
 * `step`, through a temporary file renamed over it. A missing file is fine. */
static tg_status trim_metrics(const char *path, long step) {
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        if (errno == ENOENT) {
            return TG_OK;
        }
        return tg_set_error(TG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    }

    char temp[1100];
    snprintf(temp, sizeof temp, "%s.tmp", path);
    FILE *out = fopen(temp, "w");
    if (out == NULL) {
        int err = errno;
        fclose(in);
        return tg_set_error(TG_ERR_IO, "cannot write %s: %s; check that --out is a writable "
                            "folder", temp, strerror(err));
    }

    /* Rows start with their step; the header and unparsable lines stay. */
    char *line = NULL;
    size_t capacity = 0;
    bool header = true;
    while (getline(&line, &capacity, in) >= 0) {
        char *end = NULL;
        long row_step = strtol(line, &end, 10);
        if (header || end == line || row_step <= step) {
            fputs(line, out);
        }
        header = false;
    }
    free(line);

    bool read_failed = ferror(in) != 0;
    fclose(in);
    int write_error = 0;
    if (fflush(out) != 0 || ferror(out) != 0) {
        write_error = errno != 0 ? errno : EIO;
    }
    if (fclose(out) != 0 && write_error == 0) {
        write_error = errno;
    }
    if (read_failed || write_error != 0) {
        remove(temp);
        return tg_set_error(TG_ERR_IO, "cannot rewrite %s without the rows after step %ld: %s",
                            path, step, read_failed ? "reading it failed" : strerror(write_error));
    }
    if (rename(temp, path) != 0) {
        int err = errno;
        remove(temp);
        return tg_set_error(TG_ERR_IO, "cannot rewrite %s without the rows after step %ld: "
                            "renaming %s over it failed: %s", path, step, temp, strerror(err));
    }
    return TG_OK;
}

tg_status metrics_csv_open(const char *out_dir, bool resuming, long step, FILE **metrics) {
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
    if (resuming) {
        tg_status status = trim_metrics(path, step);
        if (status != TG_OK) {
            return status;
        }
    }
    /* A resumed run appends, and writes the header only into a new file. */
    struct stat st;
    bool has_rows = stat(path, &st) == 0 && st.st_size > 0;
    FILE *f = fopen(path, resuming ? "a" : "w");
    if (f == NULL) {
        return tg_set_error(TG_ERR_IO, "cannot write %s: %s; check that --out is a writable "
                            "folder", path, strerror(errno));
    }
    if (!resuming || !has_rows) {
        fputs(METRICS_HEADER, f);
    }
    *metrics = f;
    return TG_OK;
}

tg_status metrics_csv_flush(FILE *metrics, const char *out_dir) {
    if (fflush(metrics) != 0 || ferror(metrics) != 0) {
        return tg_set_error(TG_ERR_IO, "writing %s/metrics.csv failed: %s", out_dir,
                            strerror(errno));
    }
    return TG_OK;
}
