/* The shuffle stage: a full permutation per epoch over random access, or
 * tf.data's buffered shuffle over a stream. Both draw from the counter RNG
 * keyed by (seed, epoch, salt), so an epoch's order is a pure function of
 * those and seek() can rebuild any position. */
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "stages.h"

typedef struct shuffle_stage {
    ct_stage base;
    ct_stage *up;
    uint64_t seed, salt, epoch;
    int64_t pos;           /* samples handed out this epoch */
    /* full */
    int64_t *perm;
    /* buffered */
    int64_t cap, fill;     /* buffer slots, slots in use */
    int up_done, primed;
    int64_t xs, ys;
    float *bx, *by;        /* cap samples */
    int64_t *bindex;
} shuffle_stage;

static ct_rng key(const shuffle_stage *s)
{
    return ct_rng_make(s->seed ^ (s->salt * 0x9E3779B97F4A7C15ull), CT_RNG_SHUFFLE, s->epoch);
}

static ct_status full_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    shuffle_stage *s = (shuffle_stage *)st;
    return ct_stage_get(s->up, s->perm[pos], out);
}

static ct_status full_next(ct_stage *st, ct_sample *out, int *eof)
{
    shuffle_stage *s = (shuffle_stage *)st;
    *eof = s->pos >= st->length;
    return *eof ? CT_OK : full_get(st, s->pos++, out);
}

static ct_status full_reset(ct_stage *st, uint64_t epoch)
{
    shuffle_stage *s = (shuffle_stage *)st;
    s->epoch = epoch;
    s->pos = 0;
    ct_rng r = key(s);
    ct_rng_permutation(&r, s->perm, st->length);
    return CT_OK;
}

static ct_status shuffle_tell(const ct_stage *st, uint64_t *c)
{
    *c = (uint64_t)((const shuffle_stage *)st)->pos;
    return CT_OK;
}

static ct_status full_seek(ct_stage *st, uint64_t c)
{
    if (c > (uint64_t)st->length)
        return CT_FAIL(CT_ERR_DATA, "shuffle: cannot seek to position %llu of %lld", (unsigned long long)c,
                       (long long)st->length);
    ((shuffle_stage *)st)->pos = (int64_t)c;
    return CT_OK;
}

static void shuffle_close(ct_stage *st)
{
    shuffle_stage *s = (shuffle_stage *)st;
    ct_stage_close(s->up);
    free(s->perm);
    free(s->bx);
    free(s->by);
    free(s->bindex);
    free(s);
}

/* Buffered: read the next upstream sample into slot i; *got = 0 at its end. */
static ct_status refill(shuffle_stage *s, int64_t i, int *got)
{
    ct_sample smp = {s->bx + i * s->xs, s->ys ? s->by + i * s->ys : NULL, 0, 1};
    float y_none;
    if (!s->ys) smp.y = &y_none;
    int eof = 0;
    *got = 0;
    if (s->up_done) return CT_OK;
    CT_TRY(ct_stage_next(s->up, &smp, &eof));
    if (eof) {
        s->up_done = 1;
        return CT_OK;
    }
    s->bindex[i] = smp.index;
    *got = 1;
    return CT_OK;
}

static ct_status buffered_reset(ct_stage *st, uint64_t epoch)
{
    shuffle_stage *s = (shuffle_stage *)st;
    s->epoch = epoch;
    s->pos = 0;
    s->fill = 0;
    s->up_done = 0;
    s->primed = 0;
    return ct_stage_reset(s->up, epoch);
}

/* The buffer is filled on the first read of an epoch. */
static ct_status prime(shuffle_stage *s)
{
    s->primed = 1;
    while (s->fill < s->cap) {
        int got;
        CT_TRY(refill(s, s->fill, &got));
        if (!got) break;
        s->fill++;
    }
    return CT_OK;
}

/* Take a uniformly drawn slot; out may be NULL (seek skips). */
static ct_status buffered_take(shuffle_stage *s, ct_sample *out, int *eof)
{
    if (!s->primed) CT_TRY(prime(s));
    *eof = s->fill == 0;
    if (*eof) return CT_OK;
    ct_rng r = key(s);
    int64_t j = (int64_t)ct_rng_below(&r, (uint64_t)s->pos, (uint64_t)s->fill);
    if (out) {
        memcpy(out->x, s->bx + j * s->xs, sizeof(float) * (size_t)s->xs);
        if (s->ys) memcpy(out->y, s->by + j * s->ys, sizeof(float) * (size_t)s->ys);
        out->index = s->bindex[j];
        out->rows = 1;
    }
    s->pos++;
    int got;
    CT_TRY(refill(s, j, &got));
    if (!got) { /* the stream ended: the buffer drains */
        int64_t last = --s->fill;
        if (j != last) {
            memcpy(s->bx + j * s->xs, s->bx + last * s->xs, sizeof(float) * (size_t)s->xs);
            if (s->ys) memcpy(s->by + j * s->ys, s->by + last * s->ys, sizeof(float) * (size_t)s->ys);
            s->bindex[j] = s->bindex[last];
        }
    }
    return CT_OK;
}

static ct_status buffered_next(ct_stage *st, ct_sample *out, int *eof)
{
    return buffered_take((shuffle_stage *)st, out, eof);
}

/* The order is a function of (seed, epoch): replay it from the start. */
static ct_status buffered_seek(ct_stage *st, uint64_t c)
{
    shuffle_stage *s = (shuffle_stage *)st;
    CT_TRY(buffered_reset(st, s->epoch));
    for (uint64_t i = 0; i < c; i++) {
        int eof;
        CT_TRY(buffered_take(s, NULL, &eof));
        if (eof)
            return CT_FAIL(CT_ERR_DATA, "shuffle: cannot seek to position %llu: the epoch has %llu samples",
                           (unsigned long long)c, (unsigned long long)i);
    }
    return CT_OK;
}

static const ct_stage_vtable full_vt = {"shuffle", full_next, full_reset, shuffle_tell, full_seek, shuffle_close,
                                        full_get};
static const ct_stage_vtable buffered_vt = {"shuffle", buffered_next, buffered_reset, shuffle_tell, buffered_seek,
                                            shuffle_close, NULL};

ct_status ct_shuffle_open(ct_stage *up, uint64_t seed, uint64_t salt, int64_t buffer, ct_stage **out)
{
    shuffle_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "shuffle stage");
    s->base.x_shape = up->x_shape;
    s->base.y_shape = up->y_shape;
    s->base.num_classes = up->num_classes;
    s->base.length = up->length;
    s->up = up;
    s->seed = seed;
    s->salt = salt;
    int full = up->vt->get && up->length >= 0 && (buffer <= 0 || buffer >= up->length);
    if (full) {
        s->base.vt = &full_vt;
        s->perm = malloc(sizeof(int64_t) * (size_t)up->length + 1);
        if (!s->perm) goto nomem;
        ct_rng r = key(s);
        ct_rng_permutation(&r, s->perm, up->length);
    } else {
        if (buffer <= 0)
            buffer = 1024; /* a stream of unknown length cannot be fully shuffled */
        s->base.vt = &buffered_vt;
        s->cap = buffer;
        s->xs = ct_shape_numel(&up->x_shape);
        s->ys = up->y_shape.rank ? ct_shape_numel(&up->y_shape) : 0;
        s->bx = malloc(sizeof(float) * (size_t)(s->cap * s->xs));
        s->by = malloc(sizeof(float) * (size_t)(s->cap * s->ys) + 1);
        s->bindex = malloc(sizeof(int64_t) * (size_t)s->cap);
        if (!s->bx || !s->by || !s->bindex) goto nomem;
    }
    *out = &s->base;
    return CT_OK;
nomem:
    s->up = NULL;
    shuffle_close(&s->base);
    return CT_FAIL(CT_ERR_NOMEM, "shuffle stage: buffer of %lld samples", (long long)(full ? up->length : buffer));
}
