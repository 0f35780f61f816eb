/* Status codes and the last error message.
 *
 * Functions that meet the outside world (files, allocation, parsing) return a
 * tg_status. On failure they also store a message with the values involved,
 * which tg_last_error() returns. The message is thread-local and stays valid
 * until the next failure on the same thread. The library never prints.
 */
#ifndef TG_AUTOGRAD_STATUS_H
#define TG_AUTOGRAD_STATUS_H

typedef enum tg_status {
    TG_OK = 0,
    TG_ERR_SHAPE,    /* operand shapes do not fit the operation */
    TG_ERR_INVALID,  /* an argument is out of range */
    TG_ERR_NOMEM,    /* an allocation failed */
    TG_ERR_IO,       /* a file could not be opened, read or written */
    TG_ERR_FORMAT,   /* a file's contents are not what was expected */
    TG_ERR_NUMERIC,  /* a non-finite value or a failed numerical check */
    TG_ERR_STATE,    /* the call does not fit the object's current state */
} tg_status;

/* Returns the message of the last failure on this thread, or "" if none. */
const char *tg_last_error(void);

/* Returns a short name for a status code, such as "shape error". */
const char *tg_status_name(tg_status status);

/* Stores a printf-style message as the last error and returns `status`. */
tg_status tg_set_error(tg_status status, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the last error message on this thread. */
void tg_clear_error(void);

#endif
