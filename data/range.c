/* Range, cache and shard: stages that only remap positions (and, for the
 * cache, remember what they read). All three need random access below
 * them and offer it above. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "stages.h"

static int64_t y_numel(const ct_shape *s) { return s->rank ? ct_shape_numel(s) : 0; }

static void inherit(ct_stage *s, const ct_stage *up)
{
    s->x_shape = up->x_shape;
    s->y_shape = up->y_shape;
    s->num_classes = up->num_classes;
}

static ct_status need_get(const ct_stage *up, const char *what)
{
    if (!up->vt->get || up->length < 0)
        return CT_FAIL(CT_ERR_USAGE, "%s needs a source with random access and a known length (%s has none)", what,
                       up->vt->name);
    return CT_OK;
}

/* --- range ---------------------------------------------------------------- */

typedef struct range_stage {
    ct_stage base;
    ct_stage *up;
    int owns;
    int64_t lo, pos;
} range_stage;

static ct_status range_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    range_stage *r = (range_stage *)st;
    return ct_stage_get(r->up, r->lo + pos, out);
}

static ct_status range_next(ct_stage *st, ct_sample *out, int *eof)
{
    range_stage *r = (range_stage *)st;
    *eof = r->pos >= st->length;
    return *eof ? CT_OK : range_get(st, r->pos++, out);
}

static ct_status range_reset(ct_stage *st, uint64_t epoch)
{
    (void)epoch;
    ((range_stage *)st)->pos = 0;
    return CT_OK;
}

static ct_status pos_tell(int64_t pos, uint64_t *cursor)
{
    *cursor = (uint64_t)pos;
    return CT_OK;
}

static ct_status pos_seek(const ct_stage *st, int64_t *pos, uint64_t cursor)
{
    if (cursor > (uint64_t)st->length)
        return CT_FAIL(CT_ERR_DATA, "%s: cannot seek to position %llu of %lld (a cursor from other data?)", st->vt->name,
                       (unsigned long long)cursor, (long long)st->length);
    *pos = (int64_t)cursor;
    return CT_OK;
}

static ct_status range_tell(const ct_stage *st, uint64_t *c) { return pos_tell(((const range_stage *)st)->pos, c); }
static ct_status range_seek(ct_stage *st, uint64_t c) { return pos_seek(st, &((range_stage *)st)->pos, c); }

static void range_close(ct_stage *st)
{
    range_stage *r = (range_stage *)st;
    if (r->owns) ct_stage_close(r->up);
    free(r);
}

static const ct_stage_vtable range_vt = {"range", range_next, range_reset, range_tell, range_seek, range_close,
                                         range_get};

ct_status ct_range_open(ct_stage *up, int64_t lo, int64_t hi, int owns_up, ct_stage **out)
{
    CT_TRY(need_get(up, "a range (validation_split)"));
    if (lo < 0 || hi < lo || hi > up->length)
        return CT_FAIL(CT_ERR_USAGE, "range [%lld, %lld) outside the %lld samples of %s", (long long)lo, (long long)hi,
                       (long long)up->length, up->vt->name);
    range_stage *r = calloc(1, sizeof *r);
    if (!r) return CT_FAIL(CT_ERR_NOMEM, "range stage");
    r->base.vt = &range_vt;
    inherit(&r->base, up);
    r->base.length = hi - lo;
    r->up = up;
    r->owns = owns_up;
    r->lo = lo;
    *out = &r->base;
    return CT_OK;
}

/* --- cache ---------------------------------------------------------------- */

typedef struct cache_stage {
    ct_stage base;
    ct_stage *up;
    int64_t pos, xs, ys;
    float *x, *y;             /* length * xs, length * ys */
    int64_t *index;           /* each position's sample index */
    atomic_uchar *filled;     /* set (release) after the slot is written */
} cache_stage;

static ct_status cache_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    cache_stage *c = (cache_stage *)st;
    float *x = c->x + pos * c->xs, *y = c->y + pos * c->ys;
    if (atomic_load_explicit(&c->filled[pos], memory_order_acquire)) {
        memcpy(out->x, x, sizeof(float) * (size_t)c->xs);
        if (c->ys) memcpy(out->y, y, sizeof(float) * (size_t)c->ys);
        out->index = c->index[pos];
        out->rows = 1;
        return CT_OK;
    }
    /* Within an epoch a position is read once, so two threads never fill
     * the same slot at the same time. */
    ct_sample s = {x, c->ys ? y : out->y, 0, 1};
    CT_TRY(ct_stage_get(c->up, pos, &s));
    c->index[pos] = s.index;
    atomic_store_explicit(&c->filled[pos], 1, memory_order_release);
    memcpy(out->x, x, sizeof(float) * (size_t)c->xs);
    if (c->ys) memcpy(out->y, y, sizeof(float) * (size_t)c->ys);
    out->index = s.index;
    out->rows = 1;
    return CT_OK;
}

static ct_status cache_next(ct_stage *st, ct_sample *out, int *eof)
{
    cache_stage *c = (cache_stage *)st;
    *eof = c->pos >= st->length;
    return *eof ? CT_OK : cache_get(st, c->pos++, out);
}

static ct_status cache_reset(ct_stage *st, uint64_t epoch)
{
    (void)epoch;
    ((cache_stage *)st)->pos = 0;
    return CT_OK;
}

static ct_status cache_tell(const ct_stage *st, uint64_t *c) { return pos_tell(((const cache_stage *)st)->pos, c); }
static ct_status cache_seek(ct_stage *st, uint64_t c) { return pos_seek(st, &((cache_stage *)st)->pos, c); }

static void cache_close(ct_stage *st)
{
    cache_stage *c = (cache_stage *)st;
    ct_stage_close(c->up);
    free(c->x);
    free(c->y);
    free(c->index);
    free(c->filled);
    free(c);
}

static const ct_stage_vtable cache_vt = {"cache", cache_next, cache_reset, cache_tell, cache_seek, cache_close,
                                         cache_get};

ct_status ct_cache_open(ct_stage *up, ct_stage **out)
{
    CT_TRY(need_get(up, "cache"));
    cache_stage *c = calloc(1, sizeof *c);
    if (!c) return CT_FAIL(CT_ERR_NOMEM, "cache stage");
    c->base.vt = &cache_vt;
    inherit(&c->base, up);
    c->base.length = up->length;
    c->up = up;
    c->xs = ct_shape_numel(&up->x_shape);
    c->ys = y_numel(&up->y_shape);
    size_t n = (size_t)up->length;
    c->x = malloc(sizeof(float) * n * (size_t)c->xs + 1);
    c->y = malloc(sizeof(float) * n * (size_t)c->ys + 1);
    c->index = malloc(sizeof(int64_t) * n + 1);
    c->filled = calloc(n + 1, sizeof *c->filled);
    if (!c->x || !c->y || !c->index || !c->filled) {
        c->up = NULL;
        cache_close(&c->base);
        return CT_FAIL(CT_ERR_NOMEM, "[data] cache = true: %lld samples of %lld floats do not fit in memory",
                       (long long)n, (long long)(c->xs + c->ys));
    }
    *out = &c->base;
    return CT_OK;
}

/* --- shard ---------------------------------------------------------------- */

typedef struct shard_stage {
    ct_stage base;
    ct_stage *up;
    int64_t pos;
    int64_t full;        /* whole global batches */
    int64_t share;       /* this rank's rows of a whole batch */
    int64_t lo;          /* its first row in a whole batch */
    int64_t last_lo;     /* its first row in the short last batch */
    int64_t batch;
} shard_stage;

/* Upstream position of this rank's pos-th sample. */
static int64_t shard_map(const shard_stage *s, int64_t pos)
{
    int64_t in_full = s->full * s->share;
    if (pos < in_full) return pos / s->share * s->batch + s->lo + pos % s->share;
    return s->full * s->batch + s->last_lo + (pos - in_full);
}

static ct_status shard_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    shard_stage *s = (shard_stage *)st;
    return ct_stage_get(s->up, shard_map(s, pos), out);
}

static ct_status shard_next(ct_stage *st, ct_sample *out, int *eof)
{
    shard_stage *s = (shard_stage *)st;
    *eof = s->pos >= st->length;
    return *eof ? CT_OK : shard_get(st, s->pos++, out);
}

static ct_status shard_reset(ct_stage *st, uint64_t epoch)
{
    shard_stage *s = (shard_stage *)st;
    s->pos = 0;
    return ct_stage_reset(s->up, epoch);
}

static ct_status shard_tell(const ct_stage *st, uint64_t *c) { return pos_tell(((const shard_stage *)st)->pos, c); }
static ct_status shard_seek(ct_stage *st, uint64_t c) { return pos_seek(st, &((shard_stage *)st)->pos, c); }

static void shard_close(ct_stage *st)
{
    ct_stage_close(((shard_stage *)st)->up);
    free(st);
}

static const ct_stage_vtable shard_vt = {"shard", shard_next, shard_reset, shard_tell, shard_seek, shard_close,
                                         shard_get};

ct_status ct_shard_open(ct_stage *up, int rank, int world, int64_t global_batch, int drop_remainder, ct_stage **out)
{
    CT_TRY(need_get(up, "shard"));
    if (world < 1 || rank < 0 || rank >= world || global_batch < 1)
        return CT_FAIL(CT_ERR_USAGE, "shard: rank %d of %d, batch %lld", rank, world, (long long)global_batch);
    shard_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "shard stage");
    s->base.vt = &shard_vt;
    inherit(&s->base, up);
    s->up = up;
    s->batch = global_batch;
    s->full = up->length / global_batch;
    int64_t hi, rest = drop_remainder ? 0 : up->length % global_batch, last_hi;
    ct_shard_share(global_batch, rank, world, &s->lo, &hi);
    s->share = hi - s->lo;
    ct_shard_share(rest, rank, world, &s->last_lo, &last_hi);
    s->base.length = s->full * s->share + (last_hi - s->last_lo);
    *out = &s->base;
    return CT_OK;
}
