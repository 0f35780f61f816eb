/* The --out folder of a training run: the checks a program makes before it
 * writes the first file there, and the lock it then holds while it trains.
 */
#ifndef TG_MODELS_COMMON_RUN_FOLDER_H
#define TG_MODELS_COMMON_RUN_FOLDER_H

#include <stdio.h>

/* Prepares folder dir for a run of `program` ("charlm train") that trains to
 * step `steps`, resuming from the checkpoint `resume`, or fresh when resume
 * is NULL. It checks that every checkpoint path fits
 * TG_CHECKPOINT_FILE_PATH_MAX, creates the folder if missing and checks that
 * it is writable. Then it rejects a folder that contains another run and
 * takes the run lock (run_lock.h) into *lock. Returns 0, or the exit status
 * after one line on err: 2 for a path that is too long, 1 otherwise. *lock
 * is -1 unless the call returns 0; release it with run_lock_release. */
int run_folder_open(const char *program, const char *dir, const char *resume, long steps,
                    int *lock, FILE *err);

#endif
