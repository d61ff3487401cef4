/* TensorBoard event files: CRC32C, the TFRecord framing, a writer of legacy
 * scalar/histogram summaries and a checking reader (see tfevents.h and
 * FORMATS.md §1). Events are packed with the protobuf-c code generated
 * from core/tensorboard.proto. */
#include "tfevents.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tensorboard.pb-c.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CT_CRC_HW 1
#include <nmmintrin.h>
#else
#define CT_CRC_HW 0
#endif

#define CRC32C_POLY 0x82F63B78u /* Castagnoli, reflected */
#define CRC_MASK_DELTA 0xA282EAD8u
#define FILE_VERSION "brain.Event:2"

/* --- CRC32C ------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[n] = c;
    }
}

uint32_t ct_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_table_once, crc_table_build);
    const uint8_t *p = data;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

#if CT_CRC_HW
/* The crc32 instruction computes exactly the reflected 0x82F63B78 update,
 * 8 bytes at a time; the target attribute lets this one function use it
 * without building the whole library for SSE4.2. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data,
                                                                size_t n)
{
    const uint8_t *p = data;
    uint64_t c = (uint32_t)~crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* unaligned-safe; x86 is little-endian, as the CRC wants */
        c = _mm_crc32_u64(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

int ct_crc32c_hw_available(void)
{
#if CT_CRC_HW
    return __builtin_cpu_supports("sse4.2") != 0;
#else
    return 0;
#endif
}

uint32_t ct_crc32c(uint32_t crc, const void *data, size_t n)
{
#if CT_CRC_HW
    if (ct_crc32c_hw_available()) return crc32c_sse42(crc, data, n);
#endif
    return ct_crc32c_sw(crc, data, n);
}

uint32_t ct_crc32c_masked(const void *data, size_t n)
{
    uint32_t crc = ct_crc32c(0, data, n);
    return ((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA;
}

/* --- little helpers ----------------------------------------------------- */

static void store_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t load_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A malloc'ed printf (asprintf needs _GNU_SOURCE, which we do not set). */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- the writer --------------------------------------------------------- */

struct ct_tfevents {
    FILE *f;
    char *path;
    int failed; /* a write failed: the file ends in a partial record */
};

/* Tells writers opened in the same second by this process apart. */
static atomic_int file_counter;

/* mkdir -p. An existing component is fine; what matters is that the
 * final path is a directory we can create files in (fopen will tell). */
static ct_status make_dirs(const char *dir)
{
    char *p = str_printf("%s", dir);
    if (!p) return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory for '%s'", dir);
    ct_status s = CT_OK;
    for (char *c = p + 1; s == CT_OK; c++) {
        if (*c != '/' && *c != 0) continue;
        char saved = *c;
        *c = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            s = CT_FAIL(CT_ERR_IO, "tensorboard: cannot create directory '%s': %s", p,
                        strerror(errno));
        *c = saved;
        if (saved == 0) break;
    }
    struct stat st;
    if (s == CT_OK && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)))
        s = CT_FAIL(CT_ERR_IO, "tensorboard: log directory '%s' is not a directory", p);
    free(p);
    return s;
}

/* The host part of the file name; '/' would make it a path. */
static void host_name(char *host, size_t size)
{
    if (gethostname(host, size) != 0 || !host[0]) snprintf(host, size, "localhost");
    host[size - 1] = 0;
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
}

/* Creates the file exclusively ("x", C11) so that a clash with another
 * process's file (same host name, pid and second in a shared directory)
 * moves on to the next counter instead of truncating that file. */
static ct_status create_file(ct_tfevents *w, const char *dir)
{
    char host[256];
    host_name(host, sizeof host);
    int dir_len = (int)strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/') dir_len--;
    long long t = (long long)floor(now_seconds()); /* the clock of the wall_time fields */
    for (int tries = 0; tries < 100; tries++) {
        int counter = atomic_fetch_add(&file_counter, 1);
        char *path = str_printf("%.*s/events.out.tfevents.%010lld.%s.%d.%d.v2", dir_len, dir, t,
                                host, (int)getpid(), counter);
        if (!path) return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory for '%s'", dir);
        w->f = fopen(path, "wbx");
        if (w->f) {
            w->path = path;
            return CT_OK;
        }
        int err = errno;
        if (err != EEXIST) {
            ct_status s = CT_FAIL(CT_ERR_IO, "tensorboard: cannot create '%s': %s", path,
                                  strerror(err));
            free(path);
            return s;
        }
        free(path);
    }
    return CT_FAIL(CT_ERR_IO, "tensorboard: no free event file name in '%s'", dir);
}

static ct_status write_failed(ct_tfevents *w, int err)
{
    w->failed = 1;
    return CT_FAIL(CT_ERR_IO, "tensorboard: cannot write '%s': %s", w->path, strerror(err));
}

/* One TFRecord: length, its masked CRC, payload, the payload's masked CRC. */
static ct_status write_record(ct_tfevents *w, const uint8_t *payload, size_t len)
{
    if (w->failed)
        return CT_FAIL(CT_ERR_IO, "tensorboard: '%s': an earlier write failed", w->path);
    uint8_t head[12], foot[4];
    store_le64(head, (uint64_t)len);
    store_le32(head + 8, ct_crc32c_masked(head, 8));
    store_le32(foot, ct_crc32c_masked(payload, len));
    errno = 0;
    if (fwrite(head, 1, sizeof head, w->f) != sizeof head ||
        fwrite(payload, 1, len, w->f) != len || fwrite(foot, 1, sizeof foot, w->f) != sizeof foot)
        return write_failed(w, errno ? errno : EIO);
    return CT_OK;
}

static ct_status write_event(ct_tfevents *w, const Tensorboard__Event *ev)
{
    size_t len = tensorboard__event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory for a %zu-byte event", len);
    tensorboard__event__pack(ev, buf);
    ct_status s = write_record(w, buf, len);
    free(buf);
    return s;
}

/* An Event whose summary holds the single value `val`. */
static ct_status write_value(ct_tfevents *w, int64_t step, Tensorboard__Summary__Value *val)
{
    Tensorboard__Summary__Value *values[1] = {val};
    Tensorboard__Summary summary = TENSORBOARD__SUMMARY__INIT;
    summary.n_value = 1;
    summary.value = values;
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = now_seconds();
    ev.step = step;
    ev.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY;
    ev.summary = &summary;
    return write_event(w, &ev);
}

static ct_status write_file_version(ct_tfevents *w)
{
    Tensorboard__Event ev = TENSORBOARD__EVENT__INIT;
    ev.wall_time = now_seconds();
    ev.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION;
    ev.file_version = (char *)FILE_VERSION;
    return write_event(w, &ev);
}

static void writer_free(ct_tfevents *w)
{
    if (w->f) fclose(w->f);
    free(w->path);
    free(w);
}

ct_status ct_tfevents_open(const char *dir, ct_tfevents **out)
{
    *out = NULL;
    if (!dir || !dir[0]) return CT_FAIL(CT_ERR_USAGE, "tensorboard: log directory is empty");
    CT_TRY(make_dirs(dir));
    ct_tfevents *w = calloc(1, sizeof *w);
    if (!w) return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory");
    ct_status s = create_file(w, dir);
    if (s == CT_OK) s = write_file_version(w);
    if (s == CT_OK) s = ct_tfevents_flush(w);
    if (s != CT_OK) {
        if (w->path) remove(w->path); /* a file without its first event is no use */
        writer_free(w);
        return s;
    }
    *out = w;
    return CT_OK;
}

const char *ct_tfevents_path(const ct_tfevents *w) { return w->path; }

ct_status ct_tfevents_scalar(ct_tfevents *w, const char *tag, int64_t step, double value)
{
    if (!tag) return CT_FAIL(CT_ERR_USAGE, "tensorboard '%s': scalar tag is NULL", w->path);
    Tensorboard__Summary__Value val = TENSORBOARD__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag; /* protobuf-c only reads it */
    val.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    val.simple_value = (float)value;
    return write_value(w, step, &val);
}

/* --- histograms --------------------------------------------------------- */

/* min, max, num, sum and sum_squares over the finite values, in double. */
static void hist_stats(const float *v, int64_t n, Tensorboard__HistogramProto *h)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue; /* would make min/max and the limits infinite */
        double x = v[i];
        if (h->num == 0 || x < h->min) h->min = x;
        if (h->num == 0 || x > h->max) h->max = x;
        h->num += 1;
        h->sum += x;
        h->sum_squares += x * x;
    }
}

/* Equal-width right edges between min and max; returns how many. The last
 * one is max itself so that rounding never leaves max outside. Inputs are
 * floats, so in double the edges stay strictly increasing. */
static int hist_limits(double min, double max, int k, double *limit)
{
    if (min == max) {
        limit[0] = max;
        return 1;
    }
    double width = (max - min) / k;
    for (int i = 0; i < k - 1; i++) limit[i] = min + width * (i + 1);
    limit[k - 1] = max;
    return k;
}

/* The first bucket whose limit is >= x. Division gives a guess; the loops
 * fix rounding so that the stored limits, which are what a reader sees,
 * decide exactly. limit[k-1] = max >= x ends the upward walk. */
static int hist_bucket(double x, double min, double max, const double *limit, int k)
{
    int i = 0;
    if (k > 1) {
        double guess = ceil((x - min) / (max - min) * k) - 1;
        i = guess < 0 ? 0 : guess > k - 1 ? k - 1 : (int)guess;
    }
    while (i > 0 && limit[i - 1] >= x) i--;
    while (i < k - 1 && limit[i] < x) i++;
    return i;
}

ct_status ct_tfevents_histogram(ct_tfevents *w, const char *tag, int64_t step,
                                const float *values, int64_t n, int buckets)
{
    if (!tag || (n > 0 && !values) || n < 0 || buckets < 1)
        return CT_FAIL(CT_ERR_USAGE,
                       "tensorboard '%s': histogram '%s': needs a tag, n >= 0 values and "
                       "buckets >= 1 (got n = %lld, buckets = %d)",
                       w->path, tag ? tag : "(null)", (long long)n, buckets);
    Tensorboard__HistogramProto h = TENSORBOARD__HISTOGRAM_PROTO__INIT;
    hist_stats(values, n, &h);
    double *limit = NULL;
    if (h.num > 0) {
        limit = calloc(2 * (size_t)buckets, sizeof *limit);
        if (!limit)
            return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory for %d buckets", buckets);
        double *count = limit + buckets;
        int k = hist_limits(h.min, h.max, buckets, limit);
        for (int64_t i = 0; i < n; i++)
            if (isfinite(values[i])) count[hist_bucket(values[i], h.min, h.max, limit, k)] += 1;
        h.n_bucket_limit = h.n_bucket = (size_t)k;
        h.bucket_limit = limit;
        h.bucket = count;
    }
    Tensorboard__Summary__Value val = TENSORBOARD__SUMMARY__VALUE__INIT;
    val.tag = (char *)tag;
    val.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_HISTO;
    val.histo = &h;
    ct_status s = write_value(w, step, &val);
    free(limit);
    return s;
}

ct_status ct_tfevents_flush(ct_tfevents *w)
{
    if (w->failed)
        return CT_FAIL(CT_ERR_IO, "tensorboard: '%s': an earlier write failed", w->path);
    errno = 0;
    if (fflush(w->f) != 0) return write_failed(w, errno ? errno : EIO);
    return CT_OK;
}

void ct_tfevents_close(ct_tfevents *w)
{
    if (w) writer_free(w);
}

/* --- the reader --------------------------------------------------------- */

typedef struct {
    FILE *f;
    const char *path;
    uint64_t size; /* at open: records past it belong to a writer still appending */
    uint64_t off;  /* of the next record */
    uint8_t *buf;  /* payload + footer of the current record */
    size_t cap;
} record_reader;

/* Short read: the end of what has been written so far, or an OS error. */
static ct_status short_read(record_reader *r, int *got)
{
    *got = 0;
    if (ferror(r->f))
        return CT_FAIL(CT_ERR_IO, "tensorboard: cannot read '%s': %s", r->path, strerror(errno));
    return CT_OK;
}

static ct_status crc_mismatch(const record_reader *r, const char *what)
{
    return CT_FAIL(CT_ERR_DATA, "tensorboard file '%s': record at byte %llu: %s CRC mismatch",
                   r->path, (unsigned long long)r->off, what);
}

/* Reads the record at r->off into r->buf[0..*len). *got = 0 (and CT_OK)
 * when there is no complete record left. */
static ct_status next_record(record_reader *r, size_t *len, int *got)
{
    uint8_t head[12];
    if (fread(head, 1, sizeof head, r->f) != sizeof head) return short_read(r, got);
    if (load_le32(head + 8) != ct_crc32c_masked(head, 8)) return crc_mismatch(r, "length");
    uint64_t n = load_le64(head);
    uint64_t room = r->size > r->off + 16 ? r->size - r->off - 16 : 0;
    if (n > room) return short_read(r, got); /* never malloc an unchecked length */
    if (n + 4 > r->cap) {
        uint8_t *b = realloc(r->buf, (size_t)n + 4);
        if (!b) return CT_FAIL(CT_ERR_NOMEM, "tensorboard: out of memory reading '%s'", r->path);
        r->buf = b;
        r->cap = (size_t)n + 4;
    }
    if (fread(r->buf, 1, (size_t)n + 4, r->f) != n + 4) return short_read(r, got);
    if (load_le32(r->buf + n) != ct_crc32c_masked(r->buf, (size_t)n))
        return crc_mismatch(r, "payload");
    *len = (size_t)n;
    *got = 1;
    return CT_OK;
}

ct_status ct_tfevents_read(const char *path,
                           int (*cb)(void *ctx, const uint8_t *payload, size_t len), void *ctx)
{
    record_reader r = {.path = path};
    r.f = fopen(path, "rb");
    if (!r.f) return CT_FAIL(CT_ERR_IO, "tensorboard: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    ct_status s = CT_OK;
    if (fstat(fileno(r.f), &st) != 0)
        s = CT_FAIL(CT_ERR_IO, "tensorboard: cannot stat '%s': %s", path, strerror(errno));
    r.size = s == CT_OK ? (uint64_t)st.st_size : 0;
    for (int got = 1; s == CT_OK && got;) {
        size_t len = 0;
        s = next_record(&r, &len, &got);
        if (s != CT_OK || !got) break;
        if (cb(ctx, r.buf, len) != 0) break;
        r.off += 16 + (uint64_t)len;
    }
    free(r.buf);
    fclose(r.f);
    return s;
}
