/* The pipeline stages: shards cover every sample once, batches are the same
 * bits for any number of workers and prefetch depth, cursors resume
 * exactly, buffered shuffles are permutations, the cache reads each sample
 * once, and errors on worker threads reach the caller. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "../data/dataset.h"
#include "../data/memsource.h"
#include "../data/stages.h"
#include "count_allocs.h"
#include "ct_test.h"

#define XS 6

/* A source of n samples: x = (index, index + 0.25, ...), y = index % 7;
 * counts its reads; fails at `fail_at` when >= 0. */
typedef struct test_source {
    ct_mem_source src;
    atomic_long reads;
    int64_t fail_at;
} test_source;

static ct_status ts_get(ct_stage *st, int64_t i, ct_sample *out)
{
    test_source *t = (test_source *)st;
    atomic_fetch_add(&t->reads, 1);
    if (i == t->fail_at) return CT_FAIL(CT_ERR_DATA, "test source: sample %lld is unreadable", (long long)i);
    for (int k = 0; k < XS; k++) out->x[k] = (float)i + 0.25f * (float)k;
    out->y[0] = (float)(i % 7);
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void ts_close(ct_stage *st) { free(st); }

static const ct_stage_vtable ts_vt = {"test", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell,
                                      ct_mem_source_seek, ts_close, ts_get};

static test_source *make_source(int64_t n)
{
    test_source *t = calloc(1, sizeof *t);
    t->src.base.vt = &ts_vt;
    t->src.base.x_shape = ct_shape1(XS);
    t->src.base.y_shape = ct_shape1(1);
    t->src.base.length = n;
    t->src.base.num_classes = 7;
    t->fail_at = -1;
    return t;
}

/* A map that depends only on (epoch, sample index), with enough work that
 * workers overlap: x += a keyed random value per element. */
static ct_status noisy(void *ctx, uint64_t epoch, ct_sample *s, float *scratch)
{
    (void)ctx;
    ct_rng r = ct_rng_make(99, CT_RNG_AUGMENT, epoch);
    for (int k = 0; k < XS; k++) scratch[k] = s->x[k]; /* the worker's own scratch is whole and private */
    for (int k = 0; k < XS; k++) {
        float v = 0;
        for (int j = 0; j < 50; j++) v += ct_rng_uniform(&r, (uint64_t)s->index * 1000 + (uint64_t)(k * 50 + j));
        s->x[k] = scratch[k] + v;
    }
    return CT_OK;
}

/* A map that refuses one sample (as the training map refuses a NaN). */
static ct_status refuse_23(void *ctx, uint64_t epoch, ct_sample *s, float *scratch)
{
    CT_TRY(noisy(ctx, epoch, s, scratch));
    if (s->index == 23) return CT_FAIL(CT_ERR_DATA, "map: sample %lld refused", (long long)s->index);
    return CT_OK;
}

typedef struct epoch_out {
    int64_t batches, rows;
    float x[4096 * XS], y[4096];
    int64_t batch_rows[512];
} epoch_out;

static ct_status read_epoch(ct_stage *p, uint64_t epoch, int64_t from, epoch_out *o)
{
    memset(o, 0, sizeof *o);
    CT_TRY(ct_stage_reset(p, epoch));
    if (from) CT_TRY(ct_stage_seek(p, (uint64_t)from));
    for (;;) {
        ct_sample s = {o->x + o->rows * XS, o->y + o->rows, 0, 0};
        int eof;
        CT_TRY(ct_stage_next(p, &s, &eof));
        if (eof) return CT_OK;
        o->batch_rows[o->batches++] = s.rows;
        o->rows += s.rows;
    }
}

static ct_stage *open_pipe(test_source *t, const ct_pipeline_options *o)
{
    ct_stage *p = NULL;
    ct_status s = ct_pipeline_open(&t->src.base, 0, t->src.base.length, 1, o, &p);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    return p;
}

static epoch_out A, B;

/* Each rank's batches, put side by side in rank order, are the one-process
 * batches; together they hold every sample once. */
static void test_shards_cover(void)
{
    int64_t ns[] = {1, 7, 23, 64};
    int64_t batches[] = {1, 3, 5, 8};
    for (int drop = 0; drop < 2; drop++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
                for (int world = 1; world <= 4; world++) {
                    int64_t n = ns[a], bs = batches[b];
                    ct_pipeline_options o = {.seed = 5, .shuffle = 1, .batch_size = bs, .world = 1,
                                             .drop_remainder = drop};
                    ct_stage *one = open_pipe(make_source(n), &o);
                    if (!one) return;
                    CHECK(read_epoch(one, 3, 0, &A) == CT_OK);
                    int64_t expect = drop ? n / bs * bs : n;
                    CHECK(A.rows == expect && one->global_samples == expect);
                    CHECK(A.batches == one->length);
                    int seen[64] = {0};
                    int64_t taken[512] = {0}; /* rows of global batch k handed out by ranks so far */
                    int ok = 1;
                    for (int r = 0; r < world; r++) {
                        o.rank = r;
                        o.world = world;
                        ct_stage *p = open_pipe(make_source(n), &o);
                        if (!p) return;
                        ok &= p->length == one->length;
                        CHECK(read_epoch(p, 3, 0, &B) == CT_OK);
                        ok &= B.batches == A.batches;
                        int64_t row = 0;
                        for (int64_t k = 0; k < B.batches && ok; k++) {
                            int64_t g = A.batch_rows[k], lo, hi;
                            ct_shard_share(g, r, world, &lo, &hi);
                            ok &= B.batch_rows[k] == hi - lo && taken[k] == lo;
                            int64_t first = 0;
                            for (int64_t j = 0; j < k; j++) first += A.batch_rows[j];
                            for (int64_t i = 0; i < B.batch_rows[k]; i++, row++) {
                                ok &= memcmp(&B.x[row * XS], &A.x[(first + lo + i) * XS], XS * sizeof(float)) == 0;
                                seen[(int)B.x[row * XS]]++;
                            }
                            taken[k] = hi;
                        }
                        ct_stage_close(p);
                    }
                    for (int64_t i = 0; i < n; i++) ok &= seen[i] == 1 || (drop && seen[i] == 0);
                    int64_t total = 0;
                    for (int64_t i = 0; i < n; i++) total += seen[i];
                    ok &= total == expect;
                    CHECK_MSG(ok, "n %lld batch %lld world %d drop %d", (long long)n, (long long)bs, world, drop);
                    ct_stage_close(one);
                }
}

static void test_epochs_differ(void)
{
    ct_pipeline_options o = {.seed = 5, .shuffle = 1, .batch_size = 10, .world = 1};
    ct_stage *p = open_pipe(make_source(100), &o);
    if (!p) return;
    CHECK(read_epoch(p, 0, 0, &A) == CT_OK);
    CHECK(read_epoch(p, 1, 0, &B) == CT_OK);
    CHECK(A.rows == 100 && B.rows == 100 && memcmp(A.x, B.x, 100 * XS * sizeof(float)) != 0);
    /* the same epoch again: the same order */
    CHECK(read_epoch(p, 0, 0, &B) == CT_OK && memcmp(A.x, B.x, 100 * XS * sizeof(float)) == 0);
    ct_stage_close(p);
    o.shuffle = 0;
    p = open_pipe(make_source(100), &o);
    CHECK(read_epoch(p, 4, 0, &A) == CT_OK);
    int ordered = 1;
    for (int i = 0; i < 100; i++) ordered &= A.x[i * XS] == (float)i;
    CHECK(ordered);
    ct_stage_close(p);
}

/* Same bits for 0, 1, 2 and 4 workers and any prefetch depth, on 1 and 3
 * ranks, with full and buffered shuffles and the cache. */
static void test_workers_identical(void)
{
    for (int world = 1; world <= 3; world += 2)
        for (int64_t buffer = 0; buffer <= 16; buffer += 16)
            for (int cache = 0; cache < 2; cache++) {
                ct_pipeline_options o = {.seed = 11, .shuffle = 1, .shuffle_buffer = buffer, .cache = cache,
                                         .batch_size = 9, .rank = world - 1, .world = world, .map = noisy};
                ct_stage *p = open_pipe(make_source(200), &o);
                if (!p) return;
                CHECK(read_epoch(p, 2, 0, &A) == CT_OK);
                ct_stage_close(p);
                int workers[] = {1, 2, 4}, depths[] = {0, 1, 3};
                for (int w = 0; w < 3; w++)
                    for (int d = 0; d < 3; d++) {
                        o.workers = workers[w];
                        o.prefetch = depths[d];
                        p = open_pipe(make_source(200), &o);
                        if (!p) return;
                        /* read epoch 2 twice: the second pass comes from the cache when on */
                        CHECK(read_epoch(p, 2, 0, &B) == CT_OK);
                        CHECK(read_epoch(p, 2, 0, &B) == CT_OK);
                        CHECK_MSG(B.rows == A.rows && B.batches == A.batches &&
                                      memcmp(A.x, B.x, (size_t)A.rows * XS * sizeof(float)) == 0 &&
                                      memcmp(A.y, B.y, (size_t)A.rows * sizeof(float)) == 0,
                                  "world %d buffer %lld cache %d workers %d prefetch %d", world, (long long)buffer,
                                  cache, workers[w], depths[d]);
                        ct_stage_close(p);
                    }
            }
}

/* Workers without a function only read (an image folder decodes in
 * get): the same batches as reading inline. */
static void test_workers_read_only(void)
{
    ct_pipeline_options o = {.seed = 8, .shuffle = 1, .batch_size = 7, .world = 1};
    ct_stage *p = open_pipe(make_source(90), &o);
    if (!p) return;
    CHECK(read_epoch(p, 1, 0, &A) == CT_OK);
    ct_stage_close(p);
    o.workers = 3;
    o.prefetch = 2;
    p = open_pipe(make_source(90), &o);
    if (!p) return;
    CHECK(read_epoch(p, 1, 0, &B) == CT_OK);
    CHECK(A.rows == 90 && B.rows == 90 && memcmp(A.x, B.x, 90 * XS * sizeof(float)) == 0);
    ct_stage_close(p);
}

/* tell/seek: the rest of an epoch after seek(k) is what follows batch k. */
static void test_seek_resumes(void)
{
    for (int64_t buffer = 0; buffer <= 16; buffer += 16)
        for (int prefetch = 0; prefetch <= 2; prefetch += 2) {
            ct_pipeline_options o = {.seed = 3, .shuffle = 1, .shuffle_buffer = buffer, .batch_size = 8,
                                     .world = 2, .rank = 1, .workers = 2, .prefetch = prefetch, .map = noisy};
            ct_stage *p = open_pipe(make_source(101), &o);
            if (!p) return;
            CHECK(read_epoch(p, 5, 0, &A) == CT_OK);
            /* stop after 4 batches, as a checkpoint would */
            CHECK(ct_stage_reset(p, 5) == CT_OK);
            float x[8 * XS], y[8];
            for (int k = 0; k < 4; k++) {
                ct_sample s = {x, y, 0, 0};
                int eof;
                CHECK(ct_stage_next(p, &s, &eof) == CT_OK && !eof);
            }
            uint64_t cur = 0;
            CHECK(ct_stage_tell(p, &cur) == CT_OK && cur == 4);
            ct_stage_close(p);
            p = open_pipe(make_source(101), &o);
            CHECK(read_epoch(p, 5, 4, &B) == CT_OK);
            int64_t skip = 0;
            for (int k = 0; k < 4; k++) skip += A.batch_rows[k];
            CHECK_MSG(B.rows == A.rows - skip && memcmp(B.x, A.x + skip * XS, (size_t)B.rows * XS * sizeof(float)) == 0,
                      "buffer %lld prefetch %d", (long long)buffer, prefetch);
            CHECK(ct_stage_seek(p, (uint64_t)p->length + 1) == CT_ERR_DATA);
            CHECK_STR_CONTAINS(ct_error_message(), "batch");
            ct_stage_close(p);
        }
}

/* A buffered shuffle hands out each of its input samples once; buffer 1
 * keeps the order; bigger buffers move samples at most `buffer` ahead. */
static void test_buffered_shuffle(void)
{
    test_source *t = make_source(50);
    ct_stage *sh = NULL;
    CHECK(ct_shuffle_open(&t->src.base, 7, 0, 8, &sh) == CT_OK);
    if (!sh) return;
    CHECK(sh->vt->get == NULL); /* a stream, not random access */
    int count[50] = {0}, moved = 0, ok = 1;
    float x[XS], y;
    CHECK(ct_stage_reset(sh, 0) == CT_OK);
    for (int i = 0;; i++) {
        ct_sample s = {x, &y, 0, 0};
        int eof;
        CHECK(ct_stage_next(sh, &s, &eof) == CT_OK);
        if (eof) break;
        int v = (int)x[0];
        count[v]++;
        moved |= v != i;
        ok &= v <= i + 8; /* a sample cannot come out before it enters the buffer */
    }
    for (int i = 0; i < 50; i++) ok &= count[i] == 1;
    CHECK(ok && moved);
    ct_stage_close(sh);
    t = make_source(20);
    CHECK(ct_shuffle_open(&t->src.base, 7, 0, 1, &sh) == CT_OK);
    ok = 1;
    ct_stage_reset(sh, 3);
    for (int i = 0; i < 20; i++) {
        ct_sample s = {x, &y, 0, 0};
        int eof;
        ok &= ct_stage_next(sh, &s, &eof) == CT_OK && !eof && x[0] == (float)i;
    }
    CHECK(ok);
    ct_stage_close(sh);
}

/* The cache reads each sample from its source once over several epochs. */
static void test_cache(void)
{
    test_source *t = make_source(40);
    ct_pipeline_options o = {.seed = 1, .shuffle = 1, .cache = 1, .batch_size = 6, .world = 1, .workers = 2,
                             .prefetch = 2, .map = noisy};
    ct_stage *p = open_pipe(t, &o);
    if (!p) return;
    for (int e = 0; e < 3; e++) CHECK(read_epoch(p, (uint64_t)e, 0, &A) == CT_OK && A.rows == 40);
    CHECK_MSG(atomic_load(&t->reads) == 40, "%ld reads", (long)atomic_load(&t->reads));
    ct_stage_close(p);
}

/* An error on a worker thread surfaces with its message, in order. */
static void test_worker_error(void)
{
    for (int workers = 0; workers <= 3; workers += 3) {
        test_source *t = make_source(30);
        t->fail_at = 17;
        ct_pipeline_options o = {.seed = 1, .shuffle = 0, .batch_size = 4, .world = 1, .workers = workers,
                                 .prefetch = 2, .map = noisy};
        ct_stage *p = open_pipe(t, &o);
        if (!p) return;
        ct_status s = read_epoch(p, 0, 0, &A);
        CHECK(s == CT_ERR_DATA);
        CHECK_STR_CONTAINS(ct_error_message(), "sample 17 is unreadable");
        CHECK(A.rows == 16); /* the batches before it came through */
        ct_stage_close(p);
    }
}

/* A failing map function ends the epoch at its sample, with its message
 * and status, inline and on workers; the batches before it come through,
 * and the next epoch (after a reset) runs again up to the same sample. */
static void test_map_error(void)
{
    for (int workers = 0; workers <= 3; workers += 3) {
        ct_pipeline_options o = {.seed = 1, .shuffle = 0, .batch_size = 4, .world = 1, .workers = workers,
                                 .prefetch = 2, .map = refuse_23};
        ct_stage *p = open_pipe(make_source(40), &o);
        if (!p) return;
        for (int e = 0; e < 2; e++) {
            ct_status s = read_epoch(p, (uint64_t)e, 0, &A);
            CHECK_MSG(s == CT_ERR_DATA, "workers %d: status %d", workers, (int)s);
            CHECK_STR_CONTAINS(ct_error_message(), "map: sample 23 refused");
            CHECK_MSG(A.rows == 20, "workers %d: %lld rows before the refused sample", workers, (long long)A.rows);
        }
        ct_stage_close(p);
    }
}

/* validation_split's tail: a range of the source, disjoint from training. */
static void test_range(void)
{
    test_source *t = make_source(10);
    ct_stage *r = NULL;
    CHECK(ct_range_open(&t->src.base, 7, 10, 0, &r) == CT_OK);
    float x[XS], y;
    ct_sample s = {x, &y, 0, 0};
    int eof;
    CHECK(r->length == 3 && ct_stage_next(r, &s, &eof) == CT_OK && !eof && x[0] == 7 && s.index == 7);
    CHECK(ct_stage_get(r, 2, &s) == CT_OK && x[0] == 9);
    ct_stage_close(r);
    CHECK(ct_range_open(&t->src.base, 5, 11, 0, &r) == CT_ERR_USAGE);
    ts_close(&t->src.base);
}

/* After the first epoch (threads started, buffers allocated) an epoch
 * with workers, prefetch, a buffered shuffle and a cache allocates
 * nothing: buffers are recycled. */
static void test_no_allocation(void)
{
    for (int64_t buffer = 0; buffer <= 16; buffer += 16) {
        ct_pipeline_options o = {.seed = 4, .shuffle = 1, .shuffle_buffer = buffer, .cache = 1, .batch_size = 8,
                                 .world = 2, .rank = 0, .workers = 3, .prefetch = 2, .map = noisy};
        ct_stage *p = open_pipe(make_source(300), &o);
        if (!p) return;
        CHECK(read_epoch(p, 0, 0, &A) == CT_OK);
        allocs = 0;
        counting = 1;
        ct_status s = read_epoch(p, 1, 0, &B);
        s = s == CT_OK ? read_epoch(p, 2, 5, &B) : s; /* with a seek */
        counting = 0;
        CHECK(s == CT_OK && B.rows > 0);
        CHECK_MSG(allocs == 0, "%ld allocations in a steady-state epoch (buffer %lld)", allocs, (long long)buffer);
        ct_stage_close(p);
    }
}

int main(void)
{
    test_shards_cover();
    test_epochs_differ();
    test_workers_identical();
    test_workers_read_only();
    test_seek_resumes();
    test_buffered_shuffle();
    test_cache();
    test_worker_error();
    test_map_error();
    test_range();
    test_no_allocation();
    return ct_test_report("test_pipeline");
}
