/* The batch and prefetch stages. A batch stage's next() writes a whole
 * batch (out->rows samples, rows x the per-sample shape); a prefetch stage
 * runs a batch stage on its own thread, `depth` batches ahead, in buffers
 * allocated once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stages.h"

/* --- batch ---------------------------------------------------------------- */

typedef struct batch_stage {
    ct_stage base;
    ct_stage *up;
    int rank, world;
    int64_t k;                 /* batches handed out this epoch */
    int64_t xs, ys;
} batch_stage;

/* This rank's rows in global batch k. */
static int64_t rows_of(const batch_stage *b, int64_t k)
{
    int64_t g = b->base.global_samples - k * b->base.global_batch, lo, hi;
    if (g > b->base.global_batch) g = b->base.global_batch;
    ct_shard_share(g, b->rank, b->world, &lo, &hi);
    return hi - lo;
}

static ct_status batch_next(ct_stage *st, ct_sample *out, int *eof)
{
    batch_stage *b = (batch_stage *)st;
    *eof = b->k >= st->length;
    if (*eof) return CT_OK;
    int64_t rows = rows_of(b, b->k);
    float y_none;
    for (int64_t i = 0; i < rows; i++) {
        ct_sample s = {out->x + i * b->xs, b->ys ? out->y + i * b->ys : &y_none, 0, 1};
        int end = 0;
        CT_TRY(ct_stage_next(b->up, &s, &end));
        if (end)
            return CT_FAIL(CT_ERR_RUNTIME, "batch %lld: the %s stage ended after %lld of this rank's rows",
                           (long long)b->k, b->up->vt->name, (long long)i);
        if (i == 0) out->index = s.index;
    }
    out->rows = rows;
    b->k++;
    return CT_OK;
}

static ct_status batch_reset(ct_stage *st, uint64_t epoch)
{
    batch_stage *b = (batch_stage *)st;
    b->k = 0;
    return ct_stage_reset(b->up, epoch);
}

static ct_status batch_tell(const ct_stage *st, uint64_t *c)
{
    *c = (uint64_t)((const batch_stage *)st)->k;
    return CT_OK;
}

static ct_status batch_seek(ct_stage *st, uint64_t c)
{
    batch_stage *b = (batch_stage *)st;
    if (c > (uint64_t)st->length)
        return CT_FAIL(CT_ERR_DATA, "cannot resume at batch %llu: an epoch has %lld batches (a checkpoint of other "
                       "data or another batch_size?)", (unsigned long long)c, (long long)st->length);
    int64_t full = st->global_samples / st->global_batch, k = (int64_t)c, rows;
    rows = (k < full ? k : full) * rows_of(b, 0);
    if (k > full) rows += rows_of(b, full);
    CT_TRY(ct_stage_seek(b->up, (uint64_t)rows));
    b->k = k;
    return CT_OK;
}

static void batch_close(ct_stage *st)
{
    ct_stage_close(((batch_stage *)st)->up);
    free(st);
}

static const ct_stage_vtable batch_vt = {"batch", batch_next, batch_reset, batch_tell, batch_seek, batch_close, NULL};

ct_status ct_batch_open(ct_stage *up, int rank, int world, int64_t global_batch, int64_t global_samples,
                        int drop_remainder, ct_stage **out)
{
    if (global_batch < 1 || global_samples < 0 || world < 1)
        return CT_FAIL(CT_ERR_USAGE, "batch: %lld samples in batches of %lld", (long long)global_samples,
                       (long long)global_batch);
    batch_stage *b = calloc(1, sizeof *b);
    if (!b) return CT_FAIL(CT_ERR_NOMEM, "batch stage");
    b->base.vt = &batch_vt;
    b->base.x_shape = up->x_shape;
    b->base.y_shape = up->y_shape;
    b->base.num_classes = up->num_classes;
    b->up = up;
    b->rank = rank;
    b->world = world;
    b->xs = ct_shape_numel(&up->x_shape);
    b->ys = up->y_shape.rank ? ct_shape_numel(&up->y_shape) : 0;
    if (drop_remainder) global_samples -= global_samples % global_batch;
    b->base.global_batch = global_batch;
    b->base.global_samples = global_samples;
    b->base.length = (global_samples + global_batch - 1) / global_batch;
    int64_t most = global_samples < global_batch ? global_samples : global_batch, lo, hi;
    ct_shard_share(most, rank, world, &lo, &hi);
    b->base.batch_rows = hi - lo > rows_of(b, b->base.length - 1) ? hi - lo : rows_of(b, b->base.length - 1);
    if (b->base.length == 0) b->base.batch_rows = 0;
    *out = &b->base;
    return CT_OK;
}

/* --- prefetch ------------------------------------------------------------- */

typedef struct pf_slot {
    float *x, *y;
    int64_t rows, index;
    ct_status st;
    char msg[512];
} pf_slot;

typedef struct prefetch_stage {
    ct_stage base;
    ct_stage *up;
    int depth;
    pf_slot *slots;
    float *xbuf, *ybuf;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, paused, busy, ended, held;
    int waiters;               /* threads in pthread_cond_wait: signal only then */
    int64_t head, tail;        /* next slot to hand out, next to fill */
    int64_t handed;            /* batches handed out this epoch */
} prefetch_stage;

static void wait_cv(prefetch_stage *p)
{
    p->waiters++;
    pthread_cond_wait(&p->cv, &p->mu);
    p->waiters--;
}

static void wake(prefetch_stage *p)
{
    if (p->waiters) pthread_cond_broadcast(&p->cv);
}

static void *producer(void *arg)
{
    prefetch_stage *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->quit) {
        if (p->paused || p->ended || p->tail - p->head >= p->depth) {
            wait_cv(p);
            continue;
        }
        pf_slot *s = &p->slots[p->tail % p->depth];
        p->busy = 1;
        pthread_mutex_unlock(&p->mu);
        ct_sample smp = {s->x, s->y, 0, 0};
        int eof = 0;
        ct_status st = ct_stage_next(p->up, &smp, &eof);
        if (st != CT_OK) snprintf(s->msg, sizeof s->msg, "%s", ct_error_message());
        pthread_mutex_lock(&p->mu);
        p->busy = 0;
        if (st == CT_OK && eof) {
            p->ended = 1;
        } else {
            s->st = st;
            s->rows = smp.rows;
            s->index = smp.index;
            p->tail++;
            if (st != CT_OK) p->ended = 1; /* the error is handed out in order */
        }
        wake(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ct_status ct_prefetch_acquire(ct_stage *st, ct_sample *out, int *eof)
{
    prefetch_stage *p = (prefetch_stage *)st;
    pthread_mutex_lock(&p->mu);
    *eof = 0;
    if (!p->started) {
        if (pthread_create(&p->thread, NULL, producer, p) != 0) {
            pthread_mutex_unlock(&p->mu);
            return CT_FAIL(CT_ERR_RUNTIME, "cannot start the prefetch thread");
        }
        p->started = 1;
    }
    if (p->paused) {
        p->paused = 0;
        pthread_cond_broadcast(&p->cv);
    }
    while (p->tail == p->head && !p->ended) wait_cv(p);
    ct_status s = CT_OK;
    if (p->tail == p->head) {
        *eof = 1;
    } else {
        pf_slot *sl = &p->slots[p->head % p->depth];
        if (sl->st != CT_OK) {
            s = CT_FAIL(sl->st, "%s", sl->msg);
            p->head++;
            p->handed++;
            wake(p);
        } else {
            out->x = sl->x;
            out->y = sl->y;
            out->rows = sl->rows;
            out->index = sl->index;
            p->held = 1;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return s;
}

void ct_prefetch_release(ct_stage *st)
{
    prefetch_stage *p = (prefetch_stage *)st;
    pthread_mutex_lock(&p->mu);
    if (p->held) {
        p->held = 0;
        p->head++;
        p->handed++;
        wake(p);
    }
    pthread_mutex_unlock(&p->mu);
}

static ct_status prefetch_next(ct_stage *st, ct_sample *out, int *eof)
{
    prefetch_stage *p = (prefetch_stage *)st;
    ct_sample s;
    CT_TRY(ct_prefetch_acquire(st, &s, eof));
    if (*eof) return CT_OK;
    int64_t xs = ct_shape_numel(&st->x_shape), ys = st->y_shape.rank ? ct_shape_numel(&st->y_shape) : 0;
    memcpy(out->x, s.x, sizeof(float) * (size_t)(s.rows * xs));
    if (ys) memcpy(out->y, s.y, sizeof(float) * (size_t)(s.rows * ys));
    out->rows = s.rows;
    out->index = s.index;
    ct_prefetch_release(&p->base);
    return CT_OK;
}

/* Stop producing and drop what is ready; the caller then moves the
 * upstream cursor. */
static void quiesce(prefetch_stage *p)
{
    pthread_mutex_lock(&p->mu);
    p->paused = 1;
    while (p->busy) wait_cv(p);
    p->head = p->tail = 0;
    p->ended = 0;
    p->held = 0;
    pthread_mutex_unlock(&p->mu);
}

static ct_status prefetch_reset(ct_stage *st, uint64_t epoch)
{
    prefetch_stage *p = (prefetch_stage *)st;
    quiesce(p);
    p->handed = 0;
    return ct_stage_reset(p->up, epoch);
}

static ct_status prefetch_tell(const ct_stage *st, uint64_t *c)
{
    *c = (uint64_t)((const prefetch_stage *)st)->handed;
    return CT_OK;
}

static ct_status prefetch_seek(ct_stage *st, uint64_t c)
{
    prefetch_stage *p = (prefetch_stage *)st;
    quiesce(p);
    CT_TRY(ct_stage_seek(p->up, c));
    p->handed = (int64_t)c;
    return CT_OK;
}

static void prefetch_close(ct_stage *st)
{
    prefetch_stage *p = (prefetch_stage *)st;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    ct_stage_close(p->up);
    free(p->slots);
    free(p->xbuf);
    free(p->ybuf);
    free(p);
}

static const ct_stage_vtable prefetch_vt = {"prefetch", prefetch_next, prefetch_reset, prefetch_tell, prefetch_seek,
                                            prefetch_close, NULL};

ct_status ct_prefetch_open(ct_stage *up, int depth, ct_stage **out)
{
    if (depth < 1 || depth > 1024) return CT_FAIL(CT_ERR_USAGE, "prefetch depth %d (1..1024)", depth);
    if (up->batch_rows == 0 && up->length != 0 && up->global_batch == 0)
        return CT_FAIL(CT_ERR_USAGE, "prefetch needs a batch stage below it");
    prefetch_stage *p = calloc(1, sizeof *p);
    if (!p) return CT_FAIL(CT_ERR_NOMEM, "prefetch stage");
    p->base = *up;
    p->base.vt = &prefetch_vt;
    p->up = up;
    p->depth = depth;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int64_t xs = ct_shape_numel(&up->x_shape), ys = up->y_shape.rank ? ct_shape_numel(&up->y_shape) : 1;
    int64_t rows = up->batch_rows > 0 ? up->batch_rows : 1;
    p->slots = calloc((size_t)depth, sizeof *p->slots);
    p->xbuf = malloc(sizeof(float) * (size_t)(depth * rows * xs));
    p->ybuf = malloc(sizeof(float) * (size_t)(depth * rows * ys));
    if (!p->slots || !p->xbuf || !p->ybuf) {
        p->up = NULL;
        prefetch_close(&p->base);
        return CT_FAIL(CT_ERR_NOMEM, "prefetch: %d batches of %lld samples", depth, (long long)rows);
    }
    for (int i = 0; i < depth; i++) {
        p->slots[i].x = p->xbuf + (int64_t)i * rows * xs;
        p->slots[i].y = p->ybuf + (int64_t)i * rows * ys;
    }
    *out = &p->base;
    return CT_OK;
}

int ct_stage_is_prefetch(const ct_stage *s) { return s && s->vt == &prefetch_vt; }
