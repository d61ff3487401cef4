/* Eager tensors: creation, references, scopes, the per-thread buffer cache
 * and printing. The operations are in eager_ops.c, the tapes in tape.c.
 *
 * Why a buffer cache: a training step written with eager operations
 * creates and frees the same sizes every step; large buffers from malloc
 * come from mmap and cost a page fault per 4 KiB on each reuse. Freed
 * buffers are kept per thread by exact size (up to a byte budget), so the
 * steady state of a loop allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eager_impl.h"
#include "rng.h"

const char *ct_version_string(void) { return CT_VERSION_STRING; }
int ct_abi_version(void) { return CT_ABI_VERSION; }

/* ---- buffer cache ---------------------------------------------------------- */
#define CACHE_SLOTS 64
#define CACHE_BYTES ((int64_t)512 << 20)

typedef struct cache_slot {
    float *p;
    int64_t n;
} cache_slot;

static _Thread_local cache_slot cache[CACHE_SLOTS];
static _Thread_local int cache_count;
static _Thread_local int64_t cache_bytes;

float *ct_eager_buf_alloc(int64_t n)
{
    if (n < 1) n = 1;
    for (int i = cache_count - 1; i >= 0; i--) {
        if (cache[i].n != n) continue;
        float *p = cache[i].p;
        cache[i] = cache[--cache_count];
        cache_bytes -= n * (int64_t)sizeof(float);
        return p;
    }
    size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes);
}

float *ct_eager_buf_zeros(int64_t n)
{
    float *p = ct_eager_buf_alloc(n);
    if (p) memset(p, 0, sizeof(float) * (size_t)(n < 1 ? 1 : n));
    return p;
}

void ct_eager_buf_free(float *p, int64_t n)
{
    if (!p) return;
    if (n < 1) n = 1;
    int64_t bytes = n * (int64_t)sizeof(float);
    if (cache_count == CACHE_SLOTS || cache_bytes + bytes > CACHE_BYTES) {
        /* evict the oldest entry to keep recent sizes */
        if (cache_count == 0 || bytes > CACHE_BYTES) {
            free(p);
            return;
        }
        free(cache[0].p);
        cache_bytes -= cache[0].n * (int64_t)sizeof(float);
        memmove(cache, cache + 1, sizeof(cache_slot) * (size_t)(cache_count - 1));
        cache_count--;
        if (cache_bytes + bytes > CACHE_BYTES) {
            free(p);
            return;
        }
    }
    cache[cache_count].p = p;
    cache[cache_count].n = n;
    cache_count++;
    cache_bytes += bytes;
}

void ct_eager_release_cache(void)
{
    for (int i = 0; i < cache_count; i++) free(cache[i].p);
    cache_count = 0;
    cache_bytes = 0;
}

/* ---- scopes ------------------------------------------------------------------ */
#define SCOPE_MAX 64

typedef struct scope {
    ct_eager **items;
    int64_t n, cap;
} scope;

static _Thread_local scope scopes[SCOPE_MAX];
static _Thread_local int scope_depth;

static int scope_push(scope *s, ct_eager *t)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        ct_eager **items = realloc(s->items, sizeof(*items) * (size_t)cap);
        if (!items) return 0;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return 1;
}

ct_status ct_scope_begin(void)
{
    if (scope_depth == SCOPE_MAX)
        return CT_FAIL(CT_ERR_USAGE, "ct_scope_begin: scopes nest at most %d deep on a thread", SCOPE_MAX);
    scopes[scope_depth++].n = 0;
    return CT_OK;
}

void ct_scope_end(void)
{
    if (scope_depth == 0) return;
    scope *s = &scopes[--scope_depth];
    for (int64_t i = 0; i < s->n; i++) ct_eager_free(s->items[i]);
    s->n = 0;
    if (scope_depth == 0) {
        /* the outermost scope ended: give its list back as well */
        for (int d = 0; d < SCOPE_MAX && scopes[d].items; d++) {
            free(scopes[d].items);
            scopes[d].items = NULL;
            scopes[d].cap = 0;
        }
    }
}

ct_eager *ct_scope_keep(ct_eager *t)
{
    if (!t || scope_depth == 0) return t;
    scope *s = &scopes[scope_depth - 1];
    for (int64_t i = s->n - 1; i >= 0; i--) {
        if (s->items[i] != t) continue;
        s->items[i] = s->items[--s->n];
        if (scope_depth > 1 && !scope_push(&scopes[scope_depth - 2], t)) {
            /* cannot move it: leave it with the inner scope rather than leak */
            s->items[s->n++] = t;
            CT_FAIL(CT_ERR_NOMEM, "ct_scope_keep: out of memory");
            return NULL;
        }
        return t;
    }
    return t;
}

/* ---- creation ------------------------------------------------------------------ */
static ct_status check_shape(const char *what, int rank, const int64_t *dims, int64_t *numel)
{
    if (rank < 0 || rank > CT_EAGER_MAX_DIMS)
        return CT_FAIL(CT_ERR_SHAPE, "%s: rank %d is outside [0, %d]", what, rank, CT_EAGER_MAX_DIMS);
    if (rank > 0 && !dims) return CT_FAIL(CT_ERR_USAGE, "%s: dims is NULL for rank %d", what, rank);
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return CT_FAIL(CT_ERR_SHAPE, "%s: dimension %d is %lld, expected >= 0", what, i, (long long)dims[i]);
        if (dims[i] > 0 && n > INT64_MAX / 4 / dims[i])
            return CT_FAIL(CT_ERR_SHAPE, "%s: shape has too many elements", what);
        n *= dims[i];
    }
    *numel = n;
    return CT_OK;
}

static ct_eager *eager_struct(int rank, const int64_t *dims, const char *what)
{
    int64_t n = 0;
    if (check_shape(what, rank, dims, &n) != CT_OK) return NULL;
    ct_eager *t = calloc(1, sizeof *t);
    if (!t) {
        CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    t->refs = 1;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->numel = n;
    return t;
}

static ct_eager *adopt(ct_eager *t)
{
    if (scope_depth > 0 && !scope_push(&scopes[scope_depth - 1], t)) {
        ct_eager_free(t);
        CT_FAIL(CT_ERR_NOMEM, "eager tensor: out of memory for the scope list");
        return NULL;
    }
    return t;
}

ct_eager *ct_eager_new(int rank, const int64_t *dims)
{
    ct_eager *t = eager_struct(rank, dims, "eager tensor");
    if (!t) return NULL;
    t->data = ct_eager_buf_alloc(t->numel);
    t->owns = 1;
    if (!t->data) {
        CT_FAIL(CT_ERR_NOMEM, "eager tensor: out of memory for %lld floats", (long long)t->numel);
        free(t);
        return NULL;
    }
    return adopt(t);
}

ct_eager *ct_eager_from_data(int rank, const int64_t *dims, const float *data)
{
    ct_eager *t = ct_eager_new(rank, dims);
    if (!t) return NULL;
    if (data)
        memcpy(t->data, data, sizeof(float) * (size_t)t->numel);
    else
        memset(t->data, 0, sizeof(float) * (size_t)t->numel);
    return t;
}

ct_eager *ct_eager_wrap(int rank, const int64_t *dims, float *data)
{
    ct_eager *t = eager_struct(rank, dims, "ct_eager_wrap");
    if (!t) return NULL;
    if (!data && t->numel > 0) {
        free(t);
        CT_FAIL(CT_ERR_USAGE, "ct_eager_wrap: data is NULL");
        return NULL;
    }
    t->data = data;
    return adopt(t);
}

ct_eager *ct_eager_zeros(int rank, const int64_t *dims) { return ct_eager_from_data(rank, dims, NULL); }

ct_eager *ct_eager_full(int rank, const int64_t *dims, float value)
{
    ct_eager *t = ct_eager_new(rank, dims);
    for (int64_t i = 0; t && i < t->numel; i++) t->data[i] = value;
    return t;
}

ct_eager *ct_eager_scalar(float value) { return ct_eager_full(0, NULL, value); }

ct_eager *ct_eager_random_normal(int rank, const int64_t *dims, float mean, float stddev, uint64_t seed,
                                 uint64_t stream)
{
    ct_eager *t = ct_eager_new(rank, dims);
    if (!t) return NULL;
    ct_rng r = ct_rng_make(seed, CT_RNG_INIT, stream);
    ct_rng_fill_normal(&r, 0, mean, stddev, t->data, t->numel);
    return t;
}

ct_eager *ct_eager_random_uniform(int rank, const int64_t *dims, float lo, float hi, uint64_t seed,
                                  uint64_t stream)
{
    ct_eager *t = ct_eager_new(rank, dims);
    if (!t) return NULL;
    ct_rng r = ct_rng_make(seed, CT_RNG_INIT, stream);
    ct_rng_fill_uniform(&r, 0, lo, hi, t->data, t->numel);
    return t;
}

ct_eager *ct_eager_clone(const ct_eager *t)
{
    return t ? ct_eager_from_data(t->rank, t->dims, t->data) : NULL;
}

void ct_eager_free(ct_eager *t)
{
    if (!t || --t->refs > 0) return;
    if (t->owns) ct_eager_buf_free(t->data, t->numel);
    free(t);
}

void ct_eager_discard(ct_eager *t)
{
    if (!t) return;
    if (scope_depth > 0) {
        scope *s = &scopes[scope_depth - 1];
        for (int64_t i = s->n - 1; i >= 0; i--)
            if (s->items[i] == t) {
                s->items[i] = s->items[--s->n];
                break;
            }
    }
    ct_eager_free(t);
}

ct_eager *ct_eager_retain(ct_eager *t)
{
    if (t) t->refs++;
    return t;
}

/* ---- access ---------------------------------------------------------------------- */
int ct_eager_rank(const ct_eager *t) { return t ? t->rank : 0; }

int64_t ct_eager_dim(const ct_eager *t, int axis)
{
    if (!t) return 0;
    if (axis < 0) axis += t->rank;
    return axis >= 0 && axis < t->rank ? t->dims[axis] : 0;
}

int64_t ct_eager_numel(const ct_eager *t) { return t ? t->numel : 0; }
float *ct_eager_data(ct_eager *t) { return t ? t->data : NULL; }
float ct_eager_item(const ct_eager *t, int64_t i) { return t && i >= 0 && i < t->numel ? t->data[i] : NAN; }

ct_status ct_eager_copy_to(const ct_eager *t, float *out, int64_t n)
{
    if (!t || !out) return CT_FAIL(CT_ERR_USAGE, "ct_eager_copy_to: NULL tensor or output");
    if (n != t->numel)
        return CT_FAIL(CT_ERR_SHAPE, "ct_eager_copy_to: output holds %lld floats, tensor has %lld", (long long)n,
                       (long long)t->numel);
    memcpy(out, t->data, sizeof(float) * (size_t)n);
    return CT_OK;
}

ct_status ct_eager_axpy(ct_eager *y, float alpha, const ct_eager *x)
{
    if (!y || !x) return CT_FAIL(CT_ERR_USAGE, "ct_eager_axpy: NULL tensor");
    if (y->numel != x->numel || y->rank != x->rank || memcmp(y->dims, x->dims, sizeof(int64_t) * (size_t)y->rank))
        return CT_FAIL(CT_ERR_SHAPE, "ct_eager_axpy: shapes differ (%lld and %lld elements)", (long long)y->numel,
                       (long long)x->numel);
    for (int64_t i = 0; i < y->numel; i++) y->data[i] += alpha * x->data[i];
    return CT_OK;
}

ct_status ct_eager_assign(ct_eager *dst, const ct_eager *src)
{
    if (!dst || !src) return CT_FAIL(CT_ERR_USAGE, "ct_eager_assign: NULL tensor");
    if (dst->numel != src->numel)
        return CT_FAIL(CT_ERR_SHAPE, "ct_eager_assign: %lld elements into %lld", (long long)src->numel,
                       (long long)dst->numel);
    memmove(dst->data, src->data, sizeof(float) * (size_t)dst->numel);
    return CT_OK;
}

/* ---- printing ---------------------------------------------------------------------- */
static void print_axis(const ct_eager *t, FILE *f, int axis, int64_t off, int summarise)
{
    int64_t n = t->dims[axis], stride = 1;
    for (int i = axis + 1; i < t->rank; i++) stride *= t->dims[i];
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (summarise && n > 6 && i == 3) {
            fputs("..., ", f);
            i = n - 3;
        }
        if (axis == t->rank - 1)
            fprintf(f, "%.6g", (double)t->data[off + i]);
        else
            print_axis(t, f, axis + 1, off + i * stride, summarise);
        if (i + 1 < n) fputs(", ", f);
    }
    fputc(']', f);
}

ct_status ct_eager_print(const ct_eager *t, FILE *f)
{
    if (!t || !f) return CT_FAIL(CT_ERR_USAGE, "ct_eager_print: NULL tensor or stream");
    fputs("tensor(shape=(", f);
    for (int i = 0; i < t->rank; i++) fprintf(f, i ? ", %lld" : "%lld", (long long)t->dims[i]);
    if (t->rank == 1) fputc(',', f);
    fputs("), ", f);
    if (t->rank == 0)
        fprintf(f, "%.6g", (double)t->data[0]);
    else if (t->numel == 0)
        fputs("[]", f);
    else
        print_axis(t, f, 0, 0, t->numel > 1000);
    fputs(")\n", f);
    return ferror(f) ? CT_FAIL(CT_ERR_IO, "ct_eager_print: write failed") : CT_OK;
}
