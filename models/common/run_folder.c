#define _DEFAULT_SOURCE

#include "run_folder.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "run_lock.h"

/* Creates dir if missing and checks that it is a writable folder. */
static int create_writable_folder(const char *program, const char *dir, FILE *err) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (mkdir(dir, 0777) != 0) {
            fprintf(err,
                    "%s: cannot create --out folder '%s': %s; choose a path whose "
                    "parent is a writable folder\n",
                    program, dir, strerror(errno));
            return 1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        fprintf(err,
                "%s: --out '%s' exists and is not a folder; choose a folder "
                "path\n",
                program, dir);
        return 1;
    }
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/.write-test.%ld", dir, (long)getpid());
    FILE *f = fopen(probe, "w");
    if (f == NULL) {
        fprintf(err,
                "%s: --out folder '%s' is not writable: %s; choose a writable "
                "folder\n",
                program, dir, strerror(errno));
        return 1;
    }
    fclose(f);
    remove(probe);
    return 0;
}

static bool file_exists(const char *dir, const char *name, char *path, size_t path_size) {
    snprintf(path, path_size, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Checks that every checkpoint path in the --out folder dir, up to the one
 * of the final step, fits TG_CHECKPOINT_FILE_PATH_MAX. A path that is too
 * long fails here, before any file is written, and not at the first save. */
static int check_path_length(const char *program, const char *dir, long steps, FILE *err) {
    char name[64];
    int name_len = snprintf(name, sizeof name, "ckpt-%0*ld.h5", TG_CHECKPOINT_STEP_DIGITS, steps);
    size_t dir_max = (size_t)TG_CHECKPOINT_FILE_PATH_MAX - 1 - (size_t)name_len;
    size_t dir_len = strlen(dir);
    if (dir_len > dir_max) {
        fprintf(err,
                "%s: --out path '%s' has %zu characters, but a checkpoint path "
                "may have at most %d, so that %s fits after it; choose an --out path of at "
                "most %zu characters\n",
                program, dir, dir_len, TG_CHECKPOINT_FILE_PATH_MAX, name, dir_max);
        return 2;
    }
    return 0;
}

/* Writes the folder of the checkpoint file `path` into buf ("." for a bare
 * file name). */
static void checkpoint_folder(const char *path, char *buf, size_t buf_size) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(buf, buf_size, ".");
    } else if (slash == path) {
        snprintf(buf, buf_size, "/");
    } else {
        snprintf(buf, buf_size, "%.*s", (int)(slash - path), path);
    }
}

/* Returns true if both paths name the same existing folder. */
static bool same_folder(const char *a, const char *b) {
    char real_a[PATH_MAX];
    char real_b[PATH_MAX];
    return realpath(a, real_a) != NULL && realpath(b, real_b) != NULL &&
           strcmp(real_a, real_b) == 0;
}

/* Rejects a fresh run, or a resume from a checkpoint outside dir, when dir
 * contains another run's checkpoints or metrics. Such a run would overwrite
 * the other run's best checkpoint, rotate its step checkpoints away and mix
 * rows into its metrics.csv. A resume from a checkpoint inside dir continues
 * the run there. */
static int check_no_other_run(const char *program, const char *dir, const char *resume, FILE *err) {
    char resume_dir[PATH_MAX];
    if (resume != NULL) {
        checkpoint_folder(resume, resume_dir, sizeof resume_dir);
        if (same_folder(dir, resume_dir)) {
            return 0;
        }
    }

    char latest[1024];
    int64_t step = -1;
    if (tg_checkpoint_find_latest(dir, "ckpt", latest, sizeof latest, &step) != TG_OK) {
        fprintf(err, "%s: %s\n", program, tg_last_error());
        return 1;
    }
    char best[1024];
    char metrics[1024];
    bool has_best = file_exists(dir, "ckpt-best.h5", best, sizeof best);
    bool has_metrics = file_exists(dir, "metrics.csv", metrics, sizeof metrics);
    if (step < 0 && !has_best && !has_metrics) {
        return 0;
    }

    const char *existing = metrics;
    if (step >= 0) {
        existing = latest;
    } else if (has_best) {
        existing = best;
    }
    if (resume != NULL) {
        fprintf(err,
                "%s: --out folder '%s' already holds another run (%s), and "
                "--resume %s is from the folder '%s'; resume with --out %s, or choose an "
                "empty --out\n",
                program, dir, existing, resume, resume_dir, resume_dir);
        return 1;
    }
    if (step >= 0 || has_best) {
        fprintf(err,
                "%s: --out folder '%s' already holds a run (checkpoint %s); "
                "continue it with --resume %s, or choose another --out\n",
                program, dir, existing, existing);
        return 1;
    }
    fprintf(err,
            "%s: --out folder '%s' already holds a run's %s; choose another "
            "--out, or delete the file to start over\n",
            program, dir, metrics);
    return 1;
}

int run_folder_open(const char *program, const char *dir, const char *resume, long steps, int *lock,
                    FILE *err) {
    *lock = -1;
    int code = check_path_length(program, dir, steps, err);
    if (code == 0) {
        code = create_writable_folder(program, dir, err);
    }
    if (code == 0) {
        code = check_no_other_run(program, dir, resume, err);
    }
    if (code == 0) {
        *lock = run_lock_acquire(program, dir, err);
        code = *lock < 0 ? 1 : 0;
    }
    return code;
}
