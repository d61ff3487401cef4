/* In-memory data sets: draining a stage, Keras-style splits and feature
 * standardisation. Splits follow Keras's arithmetic exactly (int() of a
 * float product) so that the same fraction gives the same row counts as
 * tf.keras. */
#include "dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "memsource.h"

/* A stage without labels has y_shape rank 0 and leaves y alone. */
static int64_t y_size_of(const ct_shape *s) { return s->rank ? ct_shape_numel(s) : 0; }

static ct_status dataset_alloc(ct_dataset *d, int64_t n)
{
    size_t xs = (size_t)(n * d->x_size) * sizeof(float), ys = (size_t)(n * d->y_size) * sizeof(float);
    float *x = realloc(d->x, xs ? xs : 1);
    if (x) d->x = x;
    float *y = x ? realloc(d->y, ys ? ys : 1) : NULL;
    if (!y) return CT_FAIL(CT_ERR_NOMEM, "data set: cannot allocate %lld samples", (long long)n);
    d->y = y;
    return CT_OK;
}

static void dataset_like(const ct_dataset *d, ct_dataset *out)
{
    memset(out, 0, sizeof *out);
    out->x_shape = d->x_shape;
    out->y_shape = d->y_shape;
    out->x_size = d->x_size;
    out->y_size = d->y_size;
    out->num_classes = d->num_classes;
}

/* Reads samples until eof, growing the arrays by doubling. */
static ct_status drain(ct_stage *src, ct_dataset *d)
{
    int64_t cap = src->length > 0 ? src->length : 1024;
    float y_scratch[1];
    CT_TRY(dataset_alloc(d, cap));
    for (;;) {
        if (d->n == cap) CT_TRY(dataset_alloc(d, cap *= 2));
        ct_sample s = {d->x + d->n * d->x_size, d->y_size ? d->y + d->n * d->y_size : y_scratch,
                       0, 0};
        int eof;
        CT_TRY(ct_stage_next(src, &s, &eof));
        if (eof) return CT_OK;
        d->n++;
    }
}

ct_status ct_dataset_from_stage(ct_stage *src, ct_dataset *out)
{
    memset(out, 0, sizeof *out);
    out->x_shape = src->x_shape;
    out->y_shape = src->y_shape;
    out->x_size = ct_shape_numel(&src->x_shape);
    out->y_size = y_size_of(&src->y_shape);
    out->num_classes = src->num_classes > 0 ? src->num_classes : 0;
    ct_status st = ct_stage_reset(src, 0);
    if (st == CT_OK) st = drain(src, out);
    if (st == CT_OK && out->n > 0) st = dataset_alloc(out, out->n); /* give back the slack */
    if (st != CT_OK) ct_dataset_free(out);
    return st;
}

void ct_dataset_free(ct_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    d->x = d->y = NULL;
    d->n = 0;
}

/* Copies rows rows[0..n) of src (all of [first, first + n) when rows is
 * NULL) into a fresh dataset shaped like src. */
static ct_status copy_rows(const ct_dataset *src, const int64_t *rows, int64_t first, int64_t n,
                           ct_dataset *dst)
{
    dataset_like(src, dst);
    CT_TRY(dataset_alloc(dst, n));
    dst->n = n;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows ? rows[i] : first + i;
        memcpy(dst->x + i * src->x_size, src->x + r * src->x_size, (size_t)src->x_size * sizeof(float));
        memcpy(dst->y + i * src->y_size, src->y + r * src->y_size, (size_t)src->y_size * sizeof(float));
    }
    return CT_OK;
}

static ct_status check_fraction(const char *what, double fraction)
{
    if (!(fraction >= 0 && fraction < 1))
        return CT_FAIL(CT_ERR_USAGE, "%s %g must be in [0, 1)", what, fraction);
    return CT_OK;
}

/* Keras refuses a split that leaves either side empty. */
static ct_status check_split(const char *what, double fraction, int64_t n, int64_t kept)
{
    if (fraction > 0 && (kept == 0 || kept == n))
        return CT_FAIL(CT_ERR_DATA,
                       "%s=%g: %lld samples are not enough to split into two non-empty parts",
                       what, fraction, (long long)n);
    return CT_OK;
}

ct_status ct_dataset_split_tail(ct_dataset *d, double fraction, ct_dataset *tail)
{
    dataset_like(d, tail);
    CT_TRY(check_fraction("validation_split", fraction));
    /* Keras: split_at = int(num_samples * (1. - validation_split)). */
    int64_t split_at = (int64_t)((double)d->n * (1.0 - fraction));
    CT_TRY(check_split("validation_split", fraction, d->n, split_at));
    CT_TRY(copy_rows(d, NULL, split_at, d->n - split_at, tail));
    d->n = split_at;
    return CT_OK;
}

ct_status ct_dataset_split_random(ct_dataset *d, double fraction, uint64_t seed, ct_dataset *held)
{
    ct_dataset kept;
    dataset_like(d, held);
    CT_TRY(check_fraction("test_split", fraction));
    /* As keras.datasets: x_train = x[:int(len(x) * (1 - test_split))]. */
    int64_t n_kept = (int64_t)((double)d->n * (1.0 - fraction));
    CT_TRY(check_split("test_split", fraction, d->n, n_kept));
    int64_t *perm = malloc((size_t)(d->n ? d->n : 1) * sizeof *perm);
    if (!perm) return CT_FAIL(CT_ERR_NOMEM, "test_split: cannot allocate %lld indices", (long long)d->n);
    ct_rng rng = ct_rng_make(seed, CT_RNG_SPLIT, 0);
    ct_rng_permutation(&rng, perm, d->n);
    ct_status st = copy_rows(d, perm, 0, n_kept, &kept);
    if (st == CT_OK) st = copy_rows(d, perm + n_kept, 0, d->n - n_kept, held);
    free(perm);
    if (st != CT_OK) {
        ct_dataset_free(&kept);
        ct_dataset_free(held);
        return st;
    }
    ct_dataset_free(d);
    *d = kept;
    return CT_OK;
}

/* A stage over a ct_dataset (not owned): random access to its rows. */
typedef struct dataset_stage {
    ct_mem_source src;
    const ct_dataset *d;
} dataset_stage;

static ct_status dataset_get(ct_stage *st, int64_t i, ct_sample *out)
{
    const ct_dataset *d = ((dataset_stage *)st)->d;
    memcpy(out->x, d->x + i * d->x_size, sizeof(float) * (size_t)d->x_size);
    if (d->y_size) memcpy(out->y, d->y + i * d->y_size, sizeof(float) * (size_t)d->y_size);
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void dataset_stage_close(ct_stage *st) { free(st); }

static const ct_stage_vtable dataset_vt = {"dataset", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell,
                                           ct_mem_source_seek, dataset_stage_close, dataset_get};

ct_status ct_dataset_stage_open(const ct_dataset *d, ct_stage **out)
{
    dataset_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "data set stage");
    s->src.base.vt = &dataset_vt;
    s->src.base.x_shape = d->x_shape;
    s->src.base.y_shape = d->y_shape;
    s->src.base.length = d->n;
    s->src.base.num_classes = d->num_classes;
    s->d = d;
    *out = &s->src.base;
    return CT_OK;
}
