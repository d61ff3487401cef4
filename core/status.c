/* The thread-local error record behind ct_status. */
#include "status.h"

#include <stdio.h>
#include <string.h>

#define CT_ERRMSG_MAX 1024

static _Thread_local char err_msg[CT_ERRMSG_MAX];
static _Thread_local char err_src[160];
static _Thread_local ct_status err_status;

ct_status ct_error_setv(ct_status s, const char *src, int line, const char *fmt, va_list ap)
{
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    snprintf(err_src, sizeof err_src, "%s:%d", src ? src : "?", line);
    err_status = s;
    return s;
}

ct_status ct_error_set(ct_status s, const char *src, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_error_setv(s, src, line, fmt, ap);
    va_end(ap);
    return s;
}

void ct_error_prefix(const char *fmt, ...)
{
    char pre[CT_ERRMSG_MAX], old[CT_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t k = strlen(pre);
    if (k >= sizeof err_msg) k = sizeof err_msg - 1;
    memcpy(err_msg, pre, k);
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof err_msg - 1 - k) rest = sizeof err_msg - 1 - k;
    memcpy(err_msg + k, old, rest);
    err_msg[k + rest] = 0;
}

const char *ct_error_message(void) { return err_msg; }
const char *ct_error_source(void) { return err_src; }
ct_status ct_error_status(void) { return err_status; }

void ct_error_clear(void)
{
    err_msg[0] = 0;
    err_src[0] = 0;
    err_status = CT_OK;
}

const char *ct_status_name(ct_status s)
{
    static const char *const names[] = {
        [CT_OK] = "ok",           [CT_ERR_USAGE] = "usage error",
        [CT_ERR_CONFIG] = "config error", [CT_ERR_DATA] = "data error",
        [CT_ERR_SHAPE] = "shape error",   [CT_ERR_CHECKPOINT] = "checkpoint error",
        [CT_ERR_IO] = "I/O error",        [CT_ERR_NOMEM] = "out of memory",
        [CT_ERR_RUNTIME] = "runtime error", [CT_ERR_COMM] = "communication error",
    };
    if ((unsigned)s < sizeof names / sizeof names[0] && names[s]) return names[s];
    return "unknown error";
}

int ct_status_exit_code(ct_status s)
{
    switch (s) {
    case CT_OK: return 0;
    case CT_ERR_USAGE: case CT_ERR_CONFIG: case CT_ERR_DATA:
    case CT_ERR_SHAPE: case CT_ERR_CHECKPOINT:
        return 2;
    default: return 1;
    }
}
