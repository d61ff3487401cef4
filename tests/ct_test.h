/* A tiny test harness: CHECK macros that count failures, and a main that
 * reports "N passed, N failed" and exits non-zero on any failure. */
#ifndef CT_TEST_H
#define CT_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/status.h"

static int ct_test_failed_ = 0, ct_test_passed_ = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            ct_test_passed_++;                                                        \
        } else {                                                                      \
            ct_test_failed_++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                   \
    do {                                                                       \
        if (cond) {                                                            \
            ct_test_passed_++;                                                 \
        } else {                                                               \
            ct_test_failed_++;                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
    do {                                                                                    \
        double ct_a_ = (double)(a), ct_b_ = (double)(b);                                    \
        if (fabs(ct_a_ - ct_b_) <= (tol) && !isnan(ct_a_)) {                                \
            ct_test_passed_++;                                                              \
        } else {                                                                            \
            ct_test_failed_++;                                                              \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g (tol %g)\n",  \
                    __FILE__, __LINE__, #a, ct_a_, #b, ct_b_, (double)(tol));               \
        }                                                                                   \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                  \
    CHECK_MSG(strstr((hay), (needle)) != NULL, "\"%s\" does not contain \"%s\"", (hay), \
              (needle))

/* expr must fail with `code`, and the message contain every string given. */
#define CHECK_FAILS(expr, code, ...)                                               \
    do {                                                                           \
        ct_error_clear();                                                          \
        ct_status st_ = (expr);                                                    \
        CHECK_MSG(st_ == (code), "%s gave %s (%s)", #expr, ct_status_name(st_),    \
                  ct_error_message());                                             \
        const char *needles_[] = {__VA_ARGS__};                                    \
        for (size_t k_ = 0; k_ < sizeof needles_ / sizeof needles_[0]; k_++)       \
            CHECK_STR_CONTAINS(ct_error_message(), needles_[k_]);                  \
    } while (0)

static inline int ct_test_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, ct_test_passed_, ct_test_failed_);
    return ct_test_failed_ ? 1 : 0;
}

#endif
