/* The map stage: a per-sample function (decode, augment, normalise) on N
 * worker threads, handed out in upstream order.
 *
 * Position p of the epoch lives in slot p % window. Workers claim the
 * lowest unclaimed position (never more than `window` ahead of the
 * consumer), read it from upstream (in parallel through get, or one at a
 * time through next under the lock), apply the function and mark the
 * slot done; next() waits for the slot of the position it hands out.
 * Since the function depends only on (epoch, sample), the output is the
 * same for any number of workers. Workers start on the first next() after
 * an open, reset or seek, so moving the cursor computes nothing wasted.
 * Errors of a worker reach the consumer with its message when it gets to
 * that position. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stages.h"

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

typedef struct map_slot {
    float *x, *y;
    int64_t pos, index;
    int state;
    ct_status st;
    char msg[512];
} map_slot;

typedef struct map_stage {
    ct_stage base;
    ct_stage *up;
    ct_map_fn fn;
    void *ctx;
    int workers, window;
    int64_t xs, ys;
    map_slot *slots;
    float *xbuf, *ybuf;
    float *scratch;         /* (workers + 1) x xs: one per worker, the last inline */
    struct map_worker *wk;
    pthread_t *threads;
    int started;            /* threads exist */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    int quit, paused, active;
    int work_waiters, done_waiters; /* threads waiting: signal only then */
    int64_t chunk;                  /* positions a worker claims at once */
    int64_t claim, consume, end;
    uint64_t epoch;
} map_stage;

typedef struct map_worker {
    struct map_stage *m;
    float *scratch;
} map_worker;

static void copy_out(const map_stage *m, const float *x, const float *y, ct_sample *out)
{
    memcpy(out->x, x, sizeof(float) * (size_t)m->xs);
    if (m->ys) memcpy(out->y, y, sizeof(float) * (size_t)m->ys);
}

/* Positions a worker may claim now: at most a chunk, inside the window. */
static int64_t claimable(const map_stage *m)
{
    if (m->paused) return 0;
    int64_t n = m->end - m->claim, room = m->consume + m->window - m->claim;
    if (room < n) n = room;
    return n < m->chunk ? n : m->chunk;
}

static void wake_consumer(map_stage *m)
{
    if (m->done_waiters) pthread_cond_broadcast(&m->done_cv);
}

/* One upstream sample into slot s (the lock is held on entry and exit;
 * released while reading through get and while mapping). *ended = 1
 * when a sequential upstream has no sample p. */
static void produce(map_stage *m, map_slot *s, int64_t p, float *scratch, int *ended)
{
    ct_sample smp = {s->x, s->y, 0, 1};
    ct_status st;
    *ended = 0;
    if (m->up->vt->get) {
        pthread_mutex_unlock(&m->mu);
        st = ct_stage_get(m->up, p, &smp);
    } else {
        int eof = 0;
        st = ct_stage_next(m->up, &smp, &eof); /* under the lock: one reader at a time */
        if (st == CT_OK && eof) {
            *ended = 1;
            return;
        }
        pthread_mutex_unlock(&m->mu);
    }
    if (st == CT_OK && m->fn) st = m->fn(m->ctx, m->epoch, &smp, scratch);
    if (st != CT_OK) snprintf(s->msg, sizeof s->msg, "%s", ct_error_message());
    s->index = smp.index;
    s->st = st;
    pthread_mutex_lock(&m->mu);
}

static void *worker(void *arg)
{
    map_worker *wk = arg;
    map_stage *m = wk->m;
    pthread_mutex_lock(&m->mu);
    while (!m->quit) {
        int64_t n = claimable(m);
        if (n <= 0) {
            m->work_waiters++;
            pthread_cond_wait(&m->work_cv, &m->mu);
            m->work_waiters--;
            continue;
        }
        if (!m->up->vt->get) n = 1; /* a stream is read one sample at a time */
        int64_t p0 = m->claim;
        m->claim += n;
        m->active++;
        for (int64_t p = p0; p < p0 + n; p++) {
            m->slots[p % m->window].state = SLOT_BUSY;
            m->slots[p % m->window].pos = p;
        }
        /* Claimed positions are this worker's alone; the slots are
         * published (SLOT_DONE) under the lock, all at once. */
        int ended = 0;
        for (int64_t p = p0; p < p0 + n && !ended; p++) {
            produce(m, &m->slots[p % m->window], p, wk->scratch, &ended);
            if (ended) { /* the upstream ended at p (n is 1 here) */
                m->end = p;
                m->claim = p;
                m->slots[p % m->window].state = SLOT_FREE;
            }
        }
        if (!ended)
            for (int64_t p = p0; p < p0 + n; p++) m->slots[p % m->window].state = SLOT_DONE;
        m->active--;
        wake_consumer(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static ct_status start(map_stage *m)
{
    m->threads = calloc((size_t)m->workers, sizeof *m->threads);
    if (!m->threads) return CT_FAIL(CT_ERR_NOMEM, "map workers");
    for (int i = 0; i < m->workers; i++) {
        if (pthread_create(&m->threads[i], NULL, worker, &m->wk[i]) != 0) {
            m->quit = 1;
            pthread_cond_broadcast(&m->work_cv);
            pthread_mutex_unlock(&m->mu);
            for (int j = 0; j < i; j++) pthread_join(m->threads[j], NULL);
            pthread_mutex_lock(&m->mu);
            m->quit = 0;
            return CT_FAIL(CT_ERR_RUNTIME, "cannot start data worker thread %d of %d", i + 1, m->workers);
        }
    }
    m->started = 1;
    return CT_OK;
}

static ct_status map_next(ct_stage *st, ct_sample *out, int *eof)
{
    map_stage *m = (map_stage *)st;
    *eof = 0;
    if (m->workers == 0) { /* inline */
        if (m->up->vt->get) {
            if ((*eof = m->consume >= m->end)) return CT_OK;
            CT_TRY(ct_stage_get(m->up, m->consume, out));
        } else {
            CT_TRY(ct_stage_next(m->up, out, eof));
            if (*eof) return CT_OK;
        }
        m->consume++;
        if (m->fn) return m->fn(m->ctx, m->epoch, out, m->scratch + (int64_t)m->workers * m->xs);
        return CT_OK;
    }
    pthread_mutex_lock(&m->mu);
    ct_status s = CT_OK;
    if (!m->started) s = start(m);
    if (m->paused) {
        m->paused = 0;
        pthread_cond_broadcast(&m->work_cv);
    }
    while (s == CT_OK) {
        if (m->consume >= m->end) {
            *eof = 1;
            break;
        }
        map_slot *sl = &m->slots[m->consume % m->window];
        if (sl->state == SLOT_DONE && sl->pos == m->consume) {
            if (sl->st != CT_OK) {
                s = CT_FAIL(sl->st, "%s", sl->msg);
            } else {
                copy_out(m, sl->x, sl->y, out);
                out->index = sl->index;
                out->rows = 1;
            }
            sl->state = SLOT_FREE;
            m->consume++;
            /* Idle workers wake when a whole chunk fits the window again. */
            if (m->work_waiters && m->consume + m->window - m->claim >= m->chunk) pthread_cond_broadcast(&m->work_cv);
            break;
        }
        m->done_waiters++;
        pthread_cond_wait(&m->done_cv, &m->mu);
        m->done_waiters--;
    }
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* Stop the workers from claiming and wait for those in flight; then the
 * slots are all free and the cursor can move. Called without the lock. */
static void quiesce(map_stage *m, int64_t pos)
{
    pthread_mutex_lock(&m->mu);
    m->paused = 1;
    while (m->active > 0) {
        m->done_waiters++;
        pthread_cond_wait(&m->done_cv, &m->mu);
        m->done_waiters--;
    }
    for (int i = 0; m->slots && i < m->window; i++) m->slots[i].state = SLOT_FREE;
    m->claim = m->consume = pos;
    m->end = m->up->vt->get ? m->up->length : INT64_MAX;
    pthread_mutex_unlock(&m->mu);
}

static ct_status map_reset(ct_stage *st, uint64_t epoch)
{
    map_stage *m = (map_stage *)st;
    quiesce(m, 0);
    m->epoch = epoch;
    return ct_stage_reset(m->up, epoch);
}

static ct_status map_tell(const ct_stage *st, uint64_t *c)
{
    *c = (uint64_t)((const map_stage *)st)->consume;
    return CT_OK;
}

static ct_status map_seek(ct_stage *st, uint64_t c)
{
    map_stage *m = (map_stage *)st;
    if (m->up->vt->get && c > (uint64_t)m->up->length)
        return CT_FAIL(CT_ERR_DATA, "map: cannot seek to position %llu of %lld", (unsigned long long)c,
                       (long long)m->up->length);
    quiesce(m, (int64_t)c);
    return m->up->vt->get ? CT_OK : ct_stage_seek(m->up, c);
}

static void map_close(ct_stage *st)
{
    map_stage *m = (map_stage *)st;
    if (m->started) {
        pthread_mutex_lock(&m->mu);
        m->quit = 1;
        pthread_cond_broadcast(&m->work_cv);
        pthread_mutex_unlock(&m->mu);
        for (int i = 0; i < m->workers; i++) pthread_join(m->threads[i], NULL);
    }
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->work_cv);
    pthread_cond_destroy(&m->done_cv);
    ct_stage_close(m->up);
    free(m->threads);
    free(m->slots);
    free(m->xbuf);
    free(m->ybuf);
    free(m->scratch);
    free(m->wk);
    free(m);
}

static const ct_stage_vtable map_vt = {"map", map_next, map_reset, map_tell, map_seek, map_close, NULL};

ct_status ct_map_open(ct_stage *up, ct_map_fn fn, void *ctx, int workers, int window, ct_stage **out)
{
    if (workers < 0 || workers > 256) return CT_FAIL(CT_ERR_USAGE, "map: %d workers (0..256)", workers);
    map_stage *m = calloc(1, sizeof *m);
    if (!m) return CT_FAIL(CT_ERR_NOMEM, "map stage");
    m->base.vt = &map_vt;
    m->base.x_shape = up->x_shape;
    m->base.y_shape = up->y_shape;
    m->base.num_classes = up->num_classes;
    m->base.length = up->length;
    m->up = up;
    m->fn = fn;
    m->ctx = ctx;
    m->workers = workers;
    m->window = window < 2 * workers ? 2 * workers : window;
    if (m->window < 1) m->window = 1;
    /* Chunks keep the lock traffic per sample low while leaving every
     * worker a share of the window. */
    m->chunk = workers > 0 ? m->window / (2 * workers) : 1;
    if (m->chunk > 32) m->chunk = 32;
    if (m->chunk < 1) m->chunk = 1;
    m->xs = ct_shape_numel(&up->x_shape);
    m->ys = up->y_shape.rank ? ct_shape_numel(&up->y_shape) : 0;
    m->end = up->vt->get ? up->length : INT64_MAX;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->work_cv, NULL);
    pthread_cond_init(&m->done_cv, NULL);
    m->scratch = malloc(sizeof(float) * (size_t)((workers + 1) * (m->xs ? m->xs : 1)));
    m->wk = calloc((size_t)workers + 1, sizeof *m->wk);
    if (!m->scratch || !m->wk) {
        m->up = NULL;
        map_close(&m->base);
        return CT_FAIL(CT_ERR_NOMEM, "map stage: scratch for %d workers", workers);
    }
    for (int i = 0; i <= workers; i++) m->wk[i] = (map_worker){m, m->scratch + (int64_t)i * m->xs};
    if (workers > 0) {
        m->slots = calloc((size_t)m->window, sizeof *m->slots);
        m->xbuf = malloc(sizeof(float) * (size_t)(m->window * m->xs));
        m->ybuf = malloc(sizeof(float) * (size_t)(m->window * (m->ys ? m->ys : 1)));
        if (!m->slots || !m->xbuf || !m->ybuf) {
            m->up = NULL;
            map_close(&m->base);
            return CT_FAIL(CT_ERR_NOMEM, "map stage: %d samples in flight", window);
        }
        for (int i = 0; i < m->window; i++) {
            m->slots[i].x = m->xbuf + (int64_t)i * m->xs;
            m->slots[i].y = m->ybuf + (int64_t)i * (m->ys ? m->ys : 1);
        }
    }
    *out = &m->base;
    return CT_OK;
}
