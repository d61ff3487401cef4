/* Status codes and the thread-local error record.
 *
 * Every fallible function in the library returns a ct_status and leaves a
 * sentence in the error record of the calling thread: what object failed
 * and what was expected ("dense 'fc2': input has 784 features, kernel
 * expects 512"). The library never exits; only launcher/ turns a status
 * into an exit code (ct_status_exit_code). */
#ifndef CT_STATUS_H
#define CT_STATUS_H

#include <stdarg.h>

/* ct_status itself and the public error functions are declared in the
 * public header, so the library and its users share one definition. */
#include "ctrain.h"

/* Record an error for this thread and return `s`. `src`/`line` are the
 * C source position (kept for debugging, printed with CT_DEBUG=1). */
ct_status ct_error_set(ct_status s, const char *src, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
ct_status ct_error_setv(ct_status s, const char *src, int line, const char *fmt, va_list ap);

#define CT_FAIL(status, ...) ct_error_set((status), __FILE__, __LINE__, __VA_ARGS__)

/* Prepend context to the current message: "file.conf:12: " + message. */
void ct_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *ct_error_message(void); /* "" when none */
const char *ct_error_source(void);  /* "core/graph.c:120" of the last error */
ct_status ct_error_status(void);
void ct_error_clear(void);

const char *ct_status_name(ct_status s);

/* Exit code contract (CLI.md): 0 ok, 2 bad usage or bad input, 1 runtime. */
int ct_status_exit_code(ct_status s);

#define CT_TRY(expr)                          \
    do {                                      \
        ct_status ct_try_s_ = (expr);         \
        if (ct_try_s_ != CT_OK) return ct_try_s_; \
    } while (0)

#endif
