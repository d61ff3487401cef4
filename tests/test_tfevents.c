/* TensorBoard event files: CRC32C check values and the FORMATS.md masked
 * CRC vector, table vs SSE4.2 agreement, a written file read back and
 * decoded field by field, the file name, and the reader's handling of a
 * corrupt byte and of a truncated last record. */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ct_test.h"
#include "tensorboard.pb-c.h"
#include "tfevents.h"

/* --- CRC ---------------------------------------------------------------- */

static void test_crc_vectors(void)
{
    const char *check = "123456789";
    CHECK(ct_crc32c(0, check, 9) == 0xE3069283u);
    CHECK(ct_crc32c_sw(0, check, 9) == 0xE3069283u);
    CHECK(ct_crc32c(ct_crc32c(0, check, 4), check + 4, 5) == 0xE3069283u); /* chaining */
    CHECK(ct_crc32c(0, "", 0) == 0);

    /* FORMATS.md §1.2: the length field of a 24-byte payload. */
    const uint8_t len24[8] = {0x18, 0, 0, 0, 0, 0, 0, 0};
    CHECK_MSG(ct_crc32c_masked(len24, 8) == 0x224B7FA3u, "got 0x%08X",
              (unsigned)ct_crc32c_masked(len24, 8));
}

/* Misaligned starts and every tail length exercise both loops of the SSE
 * path; lengths reach past a few 8-byte words and into long runs. */
static void test_crc_hw_agrees(void)
{
    if (!ct_crc32c_hw_available()) {
        printf("test_tfevents: no SSE4.2 on this CPU, table only\n");
        return;
    }
    enum { MAX = 5000 };
    uint8_t *buf = malloc(MAX + 8);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < MAX + 8; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(s >> 56);
    }
    int bad = 0, runs = 0;
    for (size_t n = 0; n < MAX; n = n < 300 ? n + 1 : n * 3 / 2 + 7) {
        for (int off = 0; off < 8; off++, runs++) {
            uint32_t seed = (uint32_t)(n * 2654435761u);
            if (ct_crc32c(seed, buf + off, n) != ct_crc32c_sw(seed, buf + off, n)) bad++;
        }
    }
    CHECK_MSG(bad == 0, "%d of %d buffers differ between SSE4.2 and table", bad, runs);
    free(buf);
}

/* --- reading back ------------------------------------------------------- */

enum { MAX_EVENTS = 64 };

typedef struct {
    Tensorboard__Event *ev[MAX_EVENTS];
    size_t offset[MAX_EVENTS]; /* byte offset of each record in the file */
    size_t next_offset;
    int n, undecodable;
} events;

static int collect(void *ctx, const uint8_t *payload, size_t len)
{
    events *e = ctx;
    if (e->n == MAX_EVENTS) return 1;
    Tensorboard__Event *ev = tensorboard__event__unpack(NULL, len, payload);
    if (!ev) e->undecodable++;
    e->offset[e->n] = e->next_offset;
    e->next_offset += len + 16;
    e->ev[e->n++] = ev;
    return 0;
}

static void events_free(events *e)
{
    for (int i = 0; i < e->n; i++)
        if (e->ev[i]) tensorboard__event__free_unpacked(e->ev[i], NULL);
    memset(e, 0, sizeof *e);
}

static ct_status read_events(const char *path, events *e)
{
    memset(e, 0, sizeof *e);
    return ct_tfevents_read(path, collect, e);
}

/* The single summary value of event i, or NULL. */
static const Tensorboard__Summary__Value *value_of(const events *e, int i)
{
    const Tensorboard__Event *ev = i < e->n ? e->ev[i] : NULL;
    if (!ev || ev->what_case != TENSORBOARD__EVENT__WHAT_SUMMARY || ev->summary->n_value != 1)
        return NULL;
    return ev->summary->value[0];
}

/* --- the written file --------------------------------------------------- */

static const char *const SCALAR_TAGS[2] = {"epoch_loss", "epoch_accuracy"};
static const double SCALAR_VALUES[3][2] = {{2.302585, 0.1}, {0.75, 0.8125}, {0.1, 0.96875}};

/* Bucket edges -0.5, 0, ..., 3 are exact in binary, so the expected
 * counts below follow the rule "first limit >= value" with no rounding:
 * -1 and -0.5 -> 0, 0 -> 1, 0.25 and 0.5 -> 2, 1 and 1 -> 3, 2.75 and 3 -> 7. */
static const float HIST_VALUES[10] = {3.0f, -1.0f, 0.5f, -0.5f, 0.0f, 1.0f, NAN, 0.25f, 2.75f, 1.0f};
static const double HIST_LIMITS[8] = {-0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3};
static const double HIST_COUNTS[8] = {2, 1, 2, 2, 0, 0, 0, 2};

enum { RANDOM_N = 1000, RANDOM_BUCKETS = 30 };

/* Bell-shaped values (a sum of three uniforms) from a fixed LCG. */
static void random_values(float *v, int n)
{
    uint64_t s = 42;
    for (int i = 0; i < n; i++) {
        double x = 0;
        for (int k = 0; k < 3; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x += (double)(s >> 11) / 9007199254740992.0;
        }
        v[i] = (float)(4 * x - 5);
    }
}

/* Writes: file_version, 3 steps x 2 scalars, the exact histogram, an
 * all-equal one, an all-NaN one and a random one (events 0..10). */
static int write_sample(const char *dir, char *path, size_t path_size)
{
    ct_tfevents *w = NULL;
    if (ct_tfevents_open(dir, &w) != CT_OK) {
        fprintf(stderr, "open: %s\n", ct_error_message());
        return 0;
    }
    snprintf(path, path_size, "%s", ct_tfevents_path(w));
    int ok = 1;
    for (int step = 0; step < 3; step++)
        for (int t = 0; t < 2; t++)
            ok &= ct_tfevents_scalar(w, SCALAR_TAGS[t], step, SCALAR_VALUES[step][t]) == CT_OK;
    const float same[3] = {2.5f, 2.5f, 2.5f}, nans[2] = {NAN, NAN};
    float rnd[RANDOM_N];
    random_values(rnd, RANDOM_N);
    ok &= ct_tfevents_histogram(w, "dense/kernel_0/histogram", 7, HIST_VALUES, 10, 8) == CT_OK;
    ok &= ct_tfevents_histogram(w, "same", 8, same, 3, 10) == CT_OK;
    ok &= ct_tfevents_histogram(w, "nans", 9, nans, 2, 10) == CT_OK;
    ok &= ct_tfevents_histogram(w, "random", 10, rnd, RANDOM_N, RANDOM_BUCKETS) == CT_OK;
    ok &= ct_tfevents_flush(w) == CT_OK;
    ct_tfevents_close(w);
    return ok;
}

static void check_file_version(const events *e, time_t t0)
{
    const Tensorboard__Event *ev = e->n > 0 ? e->ev[0] : NULL;
    CHECK(ev && ev->what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION);
    if (!ev || ev->what_case != TENSORBOARD__EVENT__WHAT_FILE_VERSION) return;
    CHECK(strcmp(ev->file_version, "brain.Event:2") == 0);
    CHECK(ev->step == 0);
    /* time() reads a coarse clock that can be a second off CLOCK_REALTIME. */
    CHECK_MSG(ev->wall_time >= (double)t0 - 1 && ev->wall_time <= (double)time(NULL) + 1,
              "wall_time %.3f, t0 %lld", ev->wall_time, (long long)t0);
}

static void check_scalars(const events *e)
{
    for (int step = 0; step < 3; step++) {
        for (int t = 0; t < 2; t++) {
            int i = 1 + 2 * step + t;
            const Tensorboard__Summary__Value *v = value_of(e, i);
            CHECK_MSG(v != NULL, "event %d is not a one-value summary", i);
            if (!v) continue;
            CHECK(e->ev[i]->step == step);
            CHECK(strcmp(v->tag, SCALAR_TAGS[t]) == 0);
            CHECK(v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE);
            CHECK(v->simple_value == (float)SCALAR_VALUES[step][t]);
            CHECK(v->metadata == NULL);
        }
    }
}

static const Tensorboard__HistogramProto *histo_of(const events *e, int i, const char *tag,
                                                   int64_t step)
{
    const Tensorboard__Summary__Value *v = value_of(e, i);
    int ok = v && v->value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO &&
             strcmp(v->tag, tag) == 0 && e->ev[i]->step == step;
    CHECK_MSG(ok, "event %d is not histogram '%s' at step %lld", i, tag, (long long)step);
    return ok ? v->histo : NULL;
}

static void check_exact_histogram(const events *e)
{
    const Tensorboard__HistogramProto *h = histo_of(e, 7, "dense/kernel_0/histogram", 7);
    if (!h) return;
    CHECK(h->min == -1.0 && h->max == 3.0);
    CHECK(h->num == 9.0); /* the NaN is left out */
    CHECK(h->sum == 7.0);
    CHECK(h->sum_squares == 20.125);
    CHECK(h->n_bucket_limit == 8 && h->n_bucket == 8);
    if (h->n_bucket_limit != 8 || h->n_bucket != 8) return;
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(h->bucket_limit[i] == HIST_LIMITS[i], "limit %d = %g", i, h->bucket_limit[i]);
        CHECK_MSG(h->bucket[i] == HIST_COUNTS[i], "bucket %d = %g", i, h->bucket[i]);
    }
}

static void check_degenerate_histograms(const events *e)
{
    const Tensorboard__HistogramProto *h = histo_of(e, 8, "same", 8);
    if (h) {
        CHECK(h->min == 2.5 && h->max == 2.5 && h->num == 3 && h->sum == 7.5);
        CHECK(h->sum_squares == 18.75);
        CHECK(h->n_bucket_limit == 1 && h->n_bucket == 1);
        if (h->n_bucket == 1) CHECK(h->bucket_limit[0] == 2.5 && h->bucket[0] == 3);
    }
    h = histo_of(e, 9, "nans", 9);
    if (h) {
        CHECK(h->num == 0 && h->sum == 0 && h->sum_squares == 0);
        CHECK(h->n_bucket_limit == 0 && h->n_bucket == 0);
    }
}

/* Statistics recomputed here in the same order (so exactly equal), and
 * every value placed by a linear scan over the limits that were stored. */
static void check_random_histogram(const events *e)
{
    const Tensorboard__HistogramProto *h = histo_of(e, 10, "random", 10);
    if (!h) return;
    float v[RANDOM_N];
    random_values(v, RANDOM_N);
    double min = v[0], max = v[0], sum = 0, sq = 0;
    for (int i = 0; i < RANDOM_N; i++) {
        min = v[i] < min ? v[i] : min;
        max = v[i] > max ? v[i] : max;
        sum += v[i];
        sq += (double)v[i] * v[i];
    }
    CHECK(h->min == min && h->max == max && h->num == RANDOM_N);
    CHECK(h->sum == sum && h->sum_squares == sq);
    CHECK(h->n_bucket_limit == RANDOM_BUCKETS && h->n_bucket == RANDOM_BUCKETS);
    if (h->n_bucket != RANDOM_BUCKETS || h->n_bucket_limit != RANDOM_BUCKETS) return;
    CHECK(h->bucket_limit[RANDOM_BUCKETS - 1] == max);
    int increasing = 1;
    for (int i = 1; i < RANDOM_BUCKETS; i++) increasing &= h->bucket_limit[i] > h->bucket_limit[i - 1];
    CHECK(increasing);
    double count[RANDOM_BUCKETS] = {0};
    for (int i = 0; i < RANDOM_N; i++) {
        int b = 0;
        while (h->bucket_limit[b] < v[i]) b++;
        count[b] += 1;
    }
    double width = (max - min) / RANDOM_BUCKETS;
    for (int b = 0; b < RANDOM_BUCKETS; b++) {
        CHECK_MSG(h->bucket[b] == count[b], "bucket %d: %g, expected %g", b, h->bucket[b], count[b]);
        CHECK_NEAR(h->bucket_limit[b], min + width * (b + 1), 1e-9 * (max - min));
    }
}

/* events.out.tfevents.<10 digits>.<host>.<pid>.<counter>.v2 */
static void check_name(const char *path, const char *dir, time_t t0)
{
    char host[256], head[600];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    snprintf(head, sizeof head, "%s/events.out.tfevents.", dir);
    CHECK_MSG(strncmp(path, head, strlen(head)) == 0, "%s", path);
    const char *p = path + strlen(head);
    int digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9') digits++;
    CHECK_MSG(digits == 10, "time field of %s", path);
    long long t = strtoll(p, NULL, 10);
    CHECK(t >= (long long)t0 - 1 && t <= (long long)time(NULL) + 1);
    p += digits;
    char mid[512];
    snprintf(mid, sizeof mid, ".%s.%d.", host, (int)getpid());
    CHECK_MSG(strncmp(p, mid, strlen(mid)) == 0, "%s lacks %s", path, mid);
    p += strlen(mid);
    char *end;
    strtol(p, &end, 10);
    CHECK_MSG(end > p && strcmp(end, ".v2") == 0, "counter and suffix of %s", path);
}

static void test_write_read(const char *tmp, char *path, size_t path_size)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/logs/run1/train", tmp); /* parents do not exist yet */
    time_t t0 = time(NULL);
    CHECK(write_sample(dir, path, path_size));
    check_name(path, dir, t0);

    events e;
    ct_status s = read_events(path, &e);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    CHECK(e.n == 11 && e.undecodable == 0);
    check_file_version(&e, t0);
    check_scalars(&e);
    check_exact_histogram(&e);
    check_degenerate_histograms(&e);
    check_random_histogram(&e);
    events_free(&e);
}

/* A second writer in the same directory gets its own file. */
static void test_second_writer(const char *tmp, const char *first)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/logs/run1/train/", tmp); /* trailing '/' is fine */
    ct_tfevents *w = NULL;
    CHECK(ct_tfevents_open(dir, &w) == CT_OK);
    if (!w) return;
    CHECK(strcmp(ct_tfevents_path(w), first) != 0);
    CHECK(strstr(ct_tfevents_path(w), "//") == NULL);
    events e;
    CHECK(read_events(ct_tfevents_path(w), &e) == CT_OK && e.n == 1);
    events_free(&e);
    ct_tfevents_close(w);
    ct_tfevents_close(NULL);
}

/* --- damaged files ------------------------------------------------------ */

static long read_whole(const char *path, uint8_t **data)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *data = malloc((size_t)n);
    if (fread(*data, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    return n;
}

static void write_whole(const char *path, const uint8_t *data, long n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, (size_t)n, f);
    fclose(f);
}

/* Flipping a payload byte or a length byte of record 3 is reported with
 * that record's offset; the records before it were still delivered. */
static void test_corrupt(const char *tmp, const char *good)
{
    events e;
    CHECK(read_events(good, &e) == CT_OK && e.n == 11);
    size_t rec = e.offset[3];
    events_free(&e);
    uint8_t *data = NULL;
    long n = read_whole(good, &data);
    CHECK(n > 0);
    if (n <= 0) return;
    char bad[600], want[64];
    snprintf(bad, sizeof bad, "%s/corrupt.tfevents", tmp);
    snprintf(want, sizeof want, "record at byte %zu", rec);
    const size_t where[2] = {rec + 12 + 3, rec + 1}; /* in the payload, in the length */
    const char *what[2] = {"payload CRC", "length CRC"};
    for (int k = 0; k < 2; k++) {
        data[where[k]] ^= 0x40;
        write_whole(bad, data, n);
        data[where[k]] ^= 0x40;
        ct_status s = read_events(bad, &e);
        CHECK(s == CT_ERR_DATA);
        CHECK(e.n == 3);
        CHECK_STR_CONTAINS(ct_error_message(), want);
        CHECK_STR_CONTAINS(ct_error_message(), bad);
        CHECK_STR_CONTAINS(ct_error_message(), what[k]);
        events_free(&e);
    }
    free(data);
}

/* A writer may still be appending: any cut inside the last record just
 * ends the walk before it. */
static void test_truncated(const char *tmp, const char *good)
{
    uint8_t *data = NULL;
    long n = read_whole(good, &data);
    if (n <= 0) return;
    events e;
    CHECK(read_events(good, &e) == CT_OK);
    long last = (long)e.offset[e.n - 1];
    events_free(&e);
    char cut[600];
    snprintf(cut, sizeof cut, "%s/truncated.tfevents", tmp);
    const long keep[4] = {n - 1, n - 5, last + 13, last + 5};
    for (int k = 0; k < 4; k++) {
        write_whole(cut, data, keep[k]);
        ct_status s = read_events(cut, &e);
        CHECK_MSG(s == CT_OK, "cut at %ld: %s", keep[k], ct_error_message());
        CHECK_MSG(e.n == 10 && e.undecodable == 0, "cut at %ld: %d events", keep[k], e.n);
        events_free(&e);
    }
    free(data);
}

static void test_errors(const char *tmp)
{
    char path[600];
    snprintf(path, sizeof path, "%s/missing.tfevents", tmp);
    events e;
    CHECK(read_events(path, &e) == CT_ERR_IO);
    CHECK_STR_CONTAINS(ct_error_message(), path);

    /* A regular file where a directory should be. */
    snprintf(path, sizeof path, "%s/corrupt.tfevents/sub", tmp);
    ct_tfevents *w = (ct_tfevents *)1;
    CHECK(ct_tfevents_open(path, &w) == CT_ERR_IO && w == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "corrupt.tfevents");

    snprintf(path, sizeof path, "%s/logs/errors", tmp);
    CHECK(ct_tfevents_open(path, &w) == CT_OK);
    if (!w) return;
    const float v[1] = {1};
    CHECK(ct_tfevents_histogram(w, "h", 0, v, 1, 0) == CT_ERR_USAGE);
    CHECK(ct_tfevents_histogram(w, "h", 0, v, -1, 10) == CT_ERR_USAGE);
    CHECK(ct_tfevents_scalar(w, NULL, 0, 1.0) == CT_ERR_USAGE);
    ct_tfevents_close(w);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    test_crc_vectors();
    test_crc_hw_agrees();

    char tmp[] = "/tmp/ct_tfevents_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char path[1024] = "";
    test_write_read(tmp, path, sizeof path);
    test_second_writer(tmp, path);
    test_corrupt(tmp, path);
    test_truncated(tmp, path);
    test_errors(tmp);
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ct_test_report("test_tfevents");
}
