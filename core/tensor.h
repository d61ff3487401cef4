/* Shapes and tensor views.
 *
 * A ct_tensor is a view: it never owns memory. Shapes of layer inputs and
 * outputs are per sample (no batch axis); the batch size travels beside
 * them. Images are NHWC (Keras channels_last). Only float32 is stored. */
#ifndef CT_TENSOR_H
#define CT_TENSOR_H

#include <stdint.h>
#include <stdio.h>

#define CT_MAX_DIMS 8

typedef struct ct_shape {
    int rank;
    int64_t dims[CT_MAX_DIMS];
} ct_shape;

typedef struct ct_tensor {
    float *data;
    ct_shape shape;
    const char *name;
} ct_tensor;

static inline int64_t ct_shape_numel(const ct_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dims[i];
    return n;
}

/* The most values one sample's tensor (or one parameter) may hold: shape
 * products are checked against it, so no size arithmetic overflows. */
#define CT_MAX_NUMEL ((int64_t)1 << 31)

/* numel, or -1 when a dimension is < 0 or the product exceeds limit. */
static inline int64_t ct_shape_numel_checked(const ct_shape *s, int64_t limit)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n) || n > limit) return -1;
    }
    return n;
}

static inline ct_shape ct_shape_make(int rank, const int64_t *dims)
{
    ct_shape s = {0};
    s.rank = rank > CT_MAX_DIMS ? CT_MAX_DIMS : rank;
    for (int i = 0; i < s.rank; i++) s.dims[i] = dims[i];
    return s;
}

static inline ct_shape ct_shape1(int64_t a) { ct_shape s = {1, {a}}; return s; }
static inline ct_shape ct_shape2(int64_t a, int64_t b) { ct_shape s = {2, {a, b}}; return s; }
static inline ct_shape ct_shape3(int64_t a, int64_t b, int64_t c) { ct_shape s = {3, {a, b, c}}; return s; }

static inline int ct_shape_equal(const ct_shape *a, const ct_shape *b)
{
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

/* Writes "(None, 26, 26, 32)" (with_batch) or "28x28" into buf. */
static inline const char *ct_shape_str(const ct_shape *s, int with_batch, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    if (with_batch) {
        k += (size_t)snprintf(buf + k, n - k, "(None");
        for (int i = 0; i < s->rank && k < n; i++)
            k += (size_t)snprintf(buf + k, n - k, ", %lld", (long long)s->dims[i]);
        if (k < n) snprintf(buf + k, n - k, ")");
    } else {
        for (int i = 0; i < s->rank && k < n; i++)
            k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)s->dims[i]);
        if (s->rank == 0) snprintf(buf, n, "scalar");
    }
    return buf;
}

#endif
