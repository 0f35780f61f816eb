#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *tg_last_error(void) {
    return last_error;
}

const char *tg_status_name(tg_status status) {
    switch (status) {
    case TG_OK: return "ok";
    case TG_ERR_SHAPE: return "shape error";
    case TG_ERR_INVALID: return "invalid argument";
    case TG_ERR_NOMEM: return "out of memory";
    case TG_ERR_IO: return "I/O error";
    case TG_ERR_FORMAT: return "format error";
    case TG_ERR_NUMERIC: return "numerical error";
    case TG_ERR_STATE: return "invalid state";
    }
    return "unknown status";
}

tg_status tg_set_error(tg_status status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

void tg_clear_error(void) {
    last_error[0] = '\0';
}
