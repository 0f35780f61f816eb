/* HDF5 checkpoints: save a training run and resume it exactly.
 *
 * A checkpoint is one HDF5 file. Its root carries the attributes format
 * ("tapegrad-checkpoint"), format_version, model_kind, step, created (ISO 8601
 * UTC) and library_version, and its groups hold what the program saves:
 * model/ (the parameters), optimizer/, schedule/, rng/, data/, config/ and
 * the optional ema/. docs/checkpoint-format.md describes the layout and which
 * program fills what. This layer is independent of any model. It stores named
 * tensors, integer arrays and attributes, and checks them on the way back.
 *
 * Saving:
 *
 *     tg_status st;
 *     tg_checkpoint_writer *w = tg_checkpoint_begin("run/ckpt-00000100.h5", "charlm", &st);
 *     if (w == NULL) { ...tg_last_error()... }
 *     tg_checkpoint_set_step(w, 100);
 *     tg_checkpoint_write_params(w, "model", &params);
 *     tg_checkpoint_write_u64(w, "rng", "train", rng.s, 4);
 *     tg_checkpoint_write_attr_int(w, "config", "n_embd", 128);
 *     st = tg_checkpoint_commit(w);       // the file appears only now, whole
 *
 * A save never damages the file already at `path`: everything is written to a
 * temporary file "<path>.tmp.<pid>.<n>" in the same directory, which commit
 * syncs to disk and renames over `path`. After a crash or a kill at any
 * moment, `path` holds either the previous checkpoint or the new one. A killed
 * save can leave its temporary file behind. tg_checkpoint_rotate deletes it
 * once its process is gone, and it is safe to delete by hand.
 *
 * Errors: every function returns a tg_status (or NULL) and sets
 * tg_last_error() to a message naming the file, the group or dataset and the
 * values involved. A failed write call makes the writer keep its first error:
 * later write calls do nothing and return it, and commit returns it after
 * removing the temporary file. So a save can be a list of calls checked once
 * at commit. HDF5 never prints: these functions turn off HDF5's automatic
 * error printing on the calling thread.
 *
 * Group and dataset names: `group` is a slash-separated HDF5 path relative to
 * the root ("model", "optimizer/m"); NULL, "" and "/" mean the root. Dataset
 * names may contain dots ("blocks.0.attn.c_attn.weight").
 *
 * Tensors are stored as float32. The float64 build of the library (for
 * gradient checking) rounds to float32 on save, so only the float32 build
 * round-trips bitwise.
 */
#ifndef TG_CHECKPOINT_CHECKPOINT_H
#define TG_CHECKPOINT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/params.h"
#include "autograd/status.h"
#include "autograd/tensor.h"

/* Value of the root attribute "format". */
#define TG_CHECKPOINT_FORMAT "tapegrad-checkpoint"
/* Value of the root attribute "format_version" that this build writes. It
 * reads files of this version and older. */
#define TG_CHECKPOINT_FORMAT_VERSION 1
/* Maximum length of a model kind, including the terminating NUL. */
#define TG_CHECKPOINT_KIND_MAX 64
/* Maximum length in characters, without the NUL, of a path that
 * tg_checkpoint_begin accepts. Programs check output folders against it
 * before training. */
#define TG_CHECKPOINT_FILE_PATH_MAX 511

typedef struct tg_checkpoint_writer tg_checkpoint_writer;
typedef struct tg_checkpoint_reader tg_checkpoint_reader;

/* ---- Writing ---------------------------------------------------------- */

/* Starts a checkpoint that will replace `path` on commit. Creates the
 * temporary file next to `path` at once, so an unwritable directory fails
 * here, and writes the root attributes format, format_version, model_kind,
 * created and library_version. model_kind names the program's model, such as
 * "charlm" or "ddpm". Returns a writer that tg_checkpoint_commit or
 * tg_checkpoint_abort frees, or NULL with *status (if status is not NULL) set
 * to TG_ERR_IO, TG_ERR_INVALID or TG_ERR_NOMEM. */
tg_checkpoint_writer *tg_checkpoint_begin(const char *path, const char *model_kind,
                                          tg_status *status);

/* Writes the root attribute "step", the number of optimizer steps taken.
 * Required once before commit. */
tg_status tg_checkpoint_set_step(tg_checkpoint_writer *w, int64_t step);

/* Write an attribute on `group`, creating the group if needed. Writing an
 * attribute that already exists is an error (TG_ERR_INVALID). */
tg_status tg_checkpoint_write_attr_string(tg_checkpoint_writer *w, const char *group,
                                          const char *name, const char *value);
tg_status tg_checkpoint_write_attr_int(tg_checkpoint_writer *w, const char *group,
                                       const char *name, int64_t value);
tg_status tg_checkpoint_write_attr_double(tg_checkpoint_writer *w, const char *group,
                                          const char *name, double value);

/* Writes the tensor's data as a float32 dataset `group/name` with the
 * tensor's shape (a scalar dataset for ndim 0). The gradient is not saved. */
tg_status tg_checkpoint_write_tensor(tg_checkpoint_writer *w, const char *group,
                                     const char *name, const tg_tensor *t);

/* Write `count` values (0 allowed) as a one-dimensional uint64 or int32
 * dataset `group/name`. uint64 arrays hold RNG states; int32 arrays hold
 * indices such as a data loader's shuffled order. */
tg_status tg_checkpoint_write_u64(tg_checkpoint_writer *w, const char *group, const char *name,
                                  const uint64_t *values, size_t count);
tg_status tg_checkpoint_write_i32(tg_checkpoint_writer *w, const char *group, const char *name,
                                  const int32_t *values, size_t count);

/* Writes every tensor of the list as `group/<parameter name>`. */
tg_status tg_checkpoint_write_params(tg_checkpoint_writer *w, const char *group,
                                     const tg_param_list *params);

/* Finishes the checkpoint: writes the HDF5 file into the temporary file,
 * syncs it, renames it over `path` and syncs the directory. Any failure (an
 * earlier write call failed, the disk is full, the file size limit is
 * reached, the rename is refused) removes the temporary file and leaves
 * `path` as it was. The returned error's message names the path and the
 * system error. Frees the writer in every case. */
tg_status tg_checkpoint_commit(tg_checkpoint_writer *w);

/* Drops the checkpoint: removes the temporary file and frees the writer.
 * Accepts NULL. */
void tg_checkpoint_abort(tg_checkpoint_writer *w);

/* ---- Reading ---------------------------------------------------------- */

/* Opens a checkpoint and checks its root attributes. expected_model_kind, if
 * not NULL, must equal the stored model_kind. Returns a reader to free with
 * tg_checkpoint_close, or NULL with *status set: TG_ERR_IO if the file is
 * missing or unreadable, TG_ERR_FORMAT if it is not HDF5, is truncated, is
 * not a tapegrad checkpoint, has a newer format version or contains
 * another model kind. The message names the path and both values where two differ. */
tg_checkpoint_reader *tg_checkpoint_open(const char *path, const char *expected_model_kind,
                                         tg_status *status);

/* Closes the file and frees the reader. Accepts NULL. */
void tg_checkpoint_close(tg_checkpoint_reader *r);

/* Return root attributes read by tg_checkpoint_open. The string lives as long
 * as the reader. */
int64_t tg_checkpoint_step(const tg_checkpoint_reader *r);
int tg_checkpoint_format_version(const tg_checkpoint_reader *r);
const char *tg_checkpoint_model_kind(const tg_checkpoint_reader *r);

/* Returns true if a group or dataset exists at `path` ("ema",
 * "model/wte.weight"), for reading optional parts. */
bool tg_checkpoint_has(const tg_checkpoint_reader *r, const char *path);

/* Read an attribute of `group`. The stored type must match: a string, an
 * integer, or a floating-point number. read_attr_string copies at most
 * buf_size bytes including the NUL and fails (TG_ERR_INVALID) if the value
 * does not fit. A missing attribute or a wrong type is TG_ERR_FORMAT. */
tg_status tg_checkpoint_read_attr_string(const tg_checkpoint_reader *r, const char *group,
                                         const char *name, char *buf, size_t buf_size);
tg_status tg_checkpoint_read_attr_int(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, int64_t *value);
tg_status tg_checkpoint_read_attr_double(const tg_checkpoint_reader *r, const char *group,
                                         const char *name, double *value);

/* Check that a stored configuration attribute equals the value the program
 * runs with. On a difference returns TG_ERR_FORMAT with a message such as
 * "checkpoint 'run/ckpt-00000100.h5': configuration field 'n_embd' differs:
 * checkpoint has 128, expected 256". Doubles compare exactly. */
tg_status tg_checkpoint_expect_int(const tg_checkpoint_reader *r, const char *group,
                                   const char *name, int64_t expected);
tg_status tg_checkpoint_expect_double(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, double expected);
tg_status tg_checkpoint_expect_string(const tg_checkpoint_reader *r, const char *group,
                                      const char *name, const char *expected);

/* Reads dataset `group/name` into an existing tensor, whose shape must equal
 * the stored one. A missing dataset is TG_ERR_FORMAT with a message naming
 * it; a shape mismatch is TG_ERR_SHAPE with a message naming the dataset and
 * both shapes. On failure t is unchanged. */
tg_status tg_checkpoint_read_tensor(const tg_checkpoint_reader *r, const char *group,
                                    const char *name, tg_tensor *t);

/* Stores in *count the number of elements of the one-dimensional dataset
 * `group/name`, for arrays whose length the program does not know ahead. */
tg_status tg_checkpoint_dataset_length(const tg_checkpoint_reader *r, const char *group,
                                       const char *name, size_t *count);

/* Read a one-dimensional uint64 or int32 dataset of exactly `count` values.
 * The stored type must be exactly uint64 or int32, so values come back
 * bitwise. */
tg_status tg_checkpoint_read_u64(const tg_checkpoint_reader *r, const char *group,
                                 const char *name, uint64_t *values, size_t count);
tg_status tg_checkpoint_read_i32(const tg_checkpoint_reader *r, const char *group,
                                 const char *name, int32_t *values, size_t count);

/* Reads every tensor of the list from `group/<parameter name>`. The group
 * must hold exactly the list's parameters: a missing or an extra one is
 * TG_ERR_FORMAT and a shape mismatch TG_ERR_SHAPE, reported before any
 * tensor is changed. */
tg_status tg_checkpoint_read_params(const tg_checkpoint_reader *r, const char *group,
                                    const tg_param_list *params);

/* ---- File names and rotation ------------------------------------------ */

/* A run directory contains step checkpoints "<prefix>-<step>.h5", with the step
 * zero-padded to TG_CHECKPOINT_STEP_DIGITS digits so that names sort by step
 * ("ckpt-00001200.h5"), and one best checkpoint "<prefix>-best.h5", which the
 * program rewrites whenever the validation loss improves. Rotation deletes
 * only step checkpoints of its prefix, never the best one. */
#define TG_CHECKPOINT_STEP_DIGITS 8

/* Write "<dir>/<prefix>-<step>.h5" or "<dir>/<prefix>-best.h5" into buf.
 * Return TG_ERR_INVALID if it does not fit, step is negative, or prefix is
 * empty or contains '/'. */
tg_status tg_checkpoint_step_path(char *buf, size_t buf_size, const char *dir,
                                  const char *prefix, int64_t step);
tg_status tg_checkpoint_best_path(char *buf, size_t buf_size, const char *dir,
                                  const char *prefix);

/* Finds the step checkpoint of `prefix` in `dir` with the highest step and
 * writes its path into `path` and its step into *step. If there is none,
 * returns TG_OK with path "" and *step -1. Returns TG_ERR_IO if dir cannot
 * be read. The file itself is not opened. */
tg_status tg_checkpoint_find_latest(const char *dir, const char *prefix, char *path,
                                    size_t path_size, int64_t *step);

/* Deletes old step checkpoints after the save of step saved_step. Among the
 * step checkpoints of `prefix` in `dir` with steps up to saved_step, it keeps
 * the keep_last ones with the highest steps and deletes the rest. Step
 * checkpoints after saved_step stay and do not count toward keep_last,
 * because they come from an earlier continuation of a run that was resumed
 * from an earlier checkpoint. So the resumed run keeps what it writes, and
 * the later files stay until the run overwrites them.
 * Also deletes the temporary files of `prefix` whose writing process no
 * longer exists (left by a save that was killed). Leaves every other file
 * alone: the best checkpoint, other prefixes, temporary files of live
 * processes. keep_last must be at least 1. Stores the number of deleted step
 * checkpoints in *removed if removed is not NULL. */
tg_status tg_checkpoint_rotate(const char *dir, const char *prefix, int keep_last,
                               int64_t saved_step, int *removed);

#endif
