/* Graceful stop on SIGINT and SIGTERM: the handler only records the signal,
 * and the training loop checks stop_signal_received() after each step, then
 * writes a checkpoint and exits cleanly. A second signal while stopping
 * restores the default action, so pressing Ctrl-C twice ends the process at
 * once.
 */
#ifndef TG_MODELS_COMMON_STOP_SIGNAL_H
#define TG_MODELS_COMMON_STOP_SIGNAL_H

#include <stdbool.h>

/* Installs the handlers and ignores SIGXFSZ (see
 * stop_signal_ignore_file_size). Returns 0, or -1 with errno set. */
int stop_signal_install(void);

/* Ignores SIGXFSZ. The default action of SIGXFSZ would kill the process in
 * the middle of a save that passes the file size limit (ulimit -f). Ignored,
 * it lets the write fail with EFBIG, so the save reports the error and leaves
 * earlier files intact. Returns 0, or -1 with errno set. */
int stop_signal_ignore_file_size(void);

/* Returns the signal number received (SIGINT or SIGTERM), or 0. */
int stop_signal_received(void);

#endif
