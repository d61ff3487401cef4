/* Tests for the .npy, HDF5 and image-folder sources (sources.h).
 *
 * Every file is written here, into a fresh directory under /tmp: .npy
 * files byte by byte, HDF5 files with the HDF5 C API, PNGs with libpng and
 * JPEGs with libjpeg. Each is read back exactly (JPEGs against a direct
 * libjpeg decode, and within a tolerance of the pixels written), malformed
 * files must fail with CT_ERR_DATA and a message naming the file (and the
 * byte offset for .npy), and for every source get() from four threads at
 * once must return what sequential next() did. */
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "ct_test.h"
#include "sources.h"

#include "tmpfiles.h"

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

/* snprintf into an array, checking that it fitted. */
#define FMT(buf, ...) CHECK(snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

static void make_dir(const char *path) { CHECK(mkdir(path, 0755) == 0); }


/* --- reading whole stages ------------------------------------------------- */

typedef struct dump {
    float *x, *y;
    int64_t nx, ny, n;
} dump;

/* Every sample through next(), checking index and rows. */
static ct_status dump_stage(ct_stage *s, dump *d)
{
    d->nx = ct_shape_numel(&s->x_shape);
    d->ny = ct_shape_numel(&s->y_shape);
    d->n = s->length;
    d->x = calloc((size_t)(d->n * d->nx), sizeof(float));
    d->y = calloc((size_t)(d->n * d->ny), sizeof(float));
    ct_status st = ct_stage_reset(s, 0);
    for (int64_t i = 0; st == CT_OK && i < d->n; i++) {
        int eof = 0;
        ct_sample smp = {d->x + i * d->nx, d->y + i * d->ny, -1, 0};
        st = ct_stage_next(s, &smp, &eof);
        if (st == CT_OK) CHECK(!eof && smp.index == i && smp.rows == 1);
    }
    if (st == CT_OK) {
        int eof = 0;
        float xx[1], yy[1];
        ct_sample smp = {xx, yy, -1, 0};
        CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && eof);
    }
    return st;
}

static void dump_free(dump *d)
{
    free(d->x);
    free(d->y);
}

typedef struct thread_job {
    ct_stage *s;
    const dump *ref;
    int id, rounds;
    long bad;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    const dump *r = j->ref;
    float *x = malloc((size_t)r->nx * sizeof *x), *y = malloc((size_t)r->ny * sizeof *y);
    for (int round = 0; round < j->rounds; round++)
        for (int64_t k = 0; k < r->n; k++) {
            /* each thread its own order: forwards, backwards, strided */
            int64_t pos = (j->id % 2 ? r->n - 1 - k : k);
            if (j->id >= 2) pos = (k * 7 + j->id + round) % r->n;
            ct_sample smp = {x, y, -1, 0};
            if (ct_stage_get(j->s, pos, &smp) != CT_OK || smp.index != pos || smp.rows != 1 ||
                memcmp(x, r->x + pos * r->nx, (size_t)r->nx * sizeof *x) != 0 ||
                memcmp(y, r->y + pos * r->ny, (size_t)r->ny * sizeof *y) != 0)
                j->bad++;
        }
    free(x);
    free(y);
    return NULL;
}

/* get() from 4 threads at once equals next(). */
static void check_threads(ct_stage *s, int rounds)
{
    dump ref;
    CHECK(dump_stage(s, &ref) == CT_OK);
    pthread_t t[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){s, &ref, i, rounds, 0};
        CHECK(pthread_create(&t[i], NULL, thread_main, &jobs[i]) == 0);
    }
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += jobs[i].bad;
    }
    CHECK_MSG(bad == 0, "%ld samples from get() in threads differ from next()", bad);
    dump_free(&ref);
}

/* --- .npy ------------------------------------------------------------------ */

typedef struct npy_buf {
    unsigned char *b;
    size_t n, header; /* total bytes, bytes before the data */
} npy_buf;

/* Preamble and header (padded to a multiple of 64, ending in '\n'), then
 * `data`. */
static npy_buf npy_make(int version, const char *dict, const void *data, size_t len)
{
    npy_buf f;
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = (pre + dl + 1 + 63) / 64 * 64 - pre;
    f.header = pre + hl;
    f.n = f.header + len;
    f.b = malloc(f.n + 1);
    memcpy(f.b, "\x93NUMPY", 6);
    f.b[6] = (unsigned char)version;
    f.b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) f.b[8 + i] = (unsigned char)(hl >> (8 * i));
    memset(f.b + pre, ' ', hl);
    memcpy(f.b + pre, dict, dl);
    f.b[pre + hl - 1] = '\n';
    if (len) memcpy(f.b + f.header, data, len);
    return f;
}

static npy_buf npy_make_simple(int version, const char *descr, const char *shape, const void *data, size_t len)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    return npy_make(version, dict, data, len);
}

static uint16_t to_half(float v)
{
    if (v == 0) return 0;
    int e;
    float m = frexpf(fabsf(v), &e); /* v = m 2^e, m in [0.5, 1) */
    uint16_t man = (uint16_t)((m * 2 - 1) * 1024);
    return (uint16_t)((v < 0 ? 0x8000 : 0) | (e - 1 + 15) << 10 | man);
}

/* Value k (0..11) of each test dtype, and its bytes. */
static double npy_test_value(char kind, int k)
{
    switch (kind) {
    case 'u': return k * 3 + 1;
    case 'i': return k * 3 - 5;
    case 'b': return k % 3 == 0;
    default: return k * 0.5 - 2.0;
    }
}

static void npy_encode(char kind, int size, int big, double v, unsigned char *out)
{
    unsigned char le[8];
    if (kind == 'f' && size == 2) {
        uint16_t h = to_half((float)v);
        memcpy(le, &h, 2);
    } else if (kind == 'f' && size == 4) {
        float f = (float)v;
        memcpy(le, &f, 4);
    } else if (kind == 'f') {
        memcpy(le, &v, 8);
    } else {
        uint64_t u = (uint64_t)(int64_t)v;
        for (int i = 0; i < 8; i++) le[i] = (unsigned char)(u >> (8 * i));
    }
    for (int i = 0; i < size; i++) out[i] = le[big ? size - 1 - i : i];
}

static void test_npy_dtypes(void)
{
    static const char *const types[] = {"u1", "i1", "b1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int big = 0; big < 2; big++) {
            char kind = types[t][0];
            int size = types[t][1] - '0';
            if (size == 1 && big) continue;
            unsigned char data[12 * 8];
            for (int k = 0; k < 12; k++) npy_encode(kind, size, big, npy_test_value(kind, k), data + k * size);
            char descr[8];
            snprintf(descr, sizeof descr, "%c%s", size == 1 ? '|' : big ? '>' : '<', types[t]);
            int version = 1 + (int)((t + (size_t)big) % 3);
            npy_buf f = npy_make_simple(version, descr, "(3, 2, 2)", data, (size_t)(12 * size));
            char name[64];
            snprintf(name, sizeof name, "x_%s_%s.npy", big ? "be" : "le", types[t]);
            write_file(tmp_path(name), f.b, f.n);
            ct_stage *s = NULL;
            ct_status st = ct_npy_open(tmp_path(name), NULL, &s);
            CHECK_MSG(st == CT_OK, "%s: %s", descr, ct_error_message());
            if (s) {
                dump d;
                CHECK(s->length == 3 && s->x_shape.rank == 2 && s->x_shape.dims[0] == 2 &&
                      s->x_shape.dims[1] == 2 && s->y_shape.rank == 0 && s->num_classes == 0);
                CHECK(dump_stage(s, &d) == CT_OK);
                int same = 1;
                for (int k = 0; k < 12; k++) same &= d.x[k] == (float)npy_test_value(kind, k);
                CHECK_MSG(same, "%s (version %d) read back wrong", descr, version);
                dump_free(&d);
            }
            ct_stage_close(s);
            /* the same bytes from memory */
            s = NULL;
            CHECK(ct_npy_open_memory(f.b, f.n, NULL, 0, name, &s) == CT_OK);
            if (s) {
                float x[4];
                ct_sample smp = {x, NULL, -1, 0};
                CHECK(ct_stage_get(s, 2, &smp) == CT_OK && smp.index == 2 &&
                      x[3] == (float)npy_test_value(kind, 11));
            }
            ct_stage_close(s);
            free(f.b);
        }
}

/* 4 samples of 3 float32 values 10 i + j. */
static npy_buf npy_x4(int version)
{
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)(10 * (i / 3) + i % 3);
    return npy_make_simple(version, "<f4", "(4, 3)", v, sizeof v);
}

static void test_npy_labels(void)
{
    npy_buf x = npy_x4(1);
    write_file(tmp_path("x4.npy"), x.b, x.n);

    /* 1-D int64 class indices */
    const int64_t lab[4] = {0, 2, 1, 2};
    npy_buf y = npy_make_simple(2, "<i8", "(4,)", lab, sizeof lab);
    write_file(tmp_path("y4.npy"), y.b, y.n);
    ct_stage *s = NULL;
    CHECK(ct_npy_open(tmp_path("x4.npy"), tmp_path("y4.npy"), &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->length == 4 && s->num_classes == 3 && s->y_shape.rank == 1 && s->y_shape.dims[0] == 1);
        CHECK(s->x_shape.rank == 1 && s->x_shape.dims[0] == 3);
        CHECK(dump_stage(s, &d) == CT_OK);
        for (int i = 0; i < 4; i++) CHECK(d.y[i] == (float)lab[i] && d.x[3 * i + 2] == (float)(10 * i + 2));
        dump_free(&d);
        check_threads(s, 20);
        /* the cursor */
        uint64_t c;
        float xx[3], yy[1];
        ct_sample smp = {xx, yy, -1, 0};
        int eof;
        CHECK(ct_stage_seek(s, 3) == CT_OK && ct_stage_next(s, &smp, &eof) == CT_OK && !eof && yy[0] == 2);
        CHECK(ct_stage_tell(s, &c) == CT_OK && c == 4);
        CHECK(ct_stage_seek(s, 5) != CT_OK);
    }
    ct_stage_close(s);

    /* big-endian int32 labels */
    unsigned char be[16];
    for (int i = 0; i < 4; i++) npy_encode('i', 4, 1, (double)(3 - i), be + 4 * i);
    npy_buf ybe = npy_make_simple(1, ">i4", "(4,)", be, sizeof be);
    s = NULL;
    CHECK(ct_npy_open_memory(x.b, x.n, ybe.b, ybe.n, "mem", &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->num_classes == 4 && dump_stage(s, &d) == CT_OK);
        for (int i = 0; i < 4; i++) CHECK(d.y[i] == (float)(3 - i));
        dump_free(&d);
    }
    ct_stage_close(s);

    /* 2-D float one-hot rows, version 3 */
    float oh[4][3] = {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}, {0.5f, 0.25f, 0.25f}};
    npy_buf y2 = npy_make_simple(3, "<f4", "(4, 3)", oh, sizeof oh);
    s = NULL;
    CHECK(ct_npy_open_memory(x.b, x.n, y2.b, y2.n, "onehot", &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->num_classes == 0 && s->y_shape.rank == 1 && s->y_shape.dims[0] == 3);
        CHECK(dump_stage(s, &d) == CT_OK && memcmp(d.y, oh, sizeof oh) == 0);
        dump_free(&d);
    }
    ct_stage_close(s);

    /* 1-D float targets: regression, no classes */
    double tg[4] = {0.5, -1.5, 2, 1e3};
    npy_buf y3 = npy_make_simple(1, "<f8", "(4,)", tg, sizeof tg);
    s = NULL;
    CHECK(ct_npy_open_memory(x.b, x.n, y3.b, y3.n, "reg", &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->num_classes == 0 && dump_stage(s, &d) == CT_OK && d.y[1] == -1.5f && d.y[3] == 1000.0f);
        dump_free(&d);
    }
    ct_stage_close(s);

    /* a 1-D x gives (1) per sample; strict header variants that parse */
    const uint8_t one[3] = {7, 8, 9};
    npy_buf z = npy_make(1, "{\"shape\":(3,),\"fortran_order\":False,\"descr\":\"|u1\"}", one, 3);
    s = NULL;
    CHECK(ct_npy_open_memory(z.b, z.n, NULL, 0, "z", &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->x_shape.rank == 1 && s->x_shape.dims[0] == 1 && dump_stage(s, &d) == CT_OK && d.x[2] == 9);
        dump_free(&d);
    }
    ct_stage_close(s);
    free(x.b), free(y.b), free(ybe.b), free(y2.b), free(y3.b), free(z.b);
}

static ct_status npy_open_dict(const char *name, const char *dict, const void *data, size_t len)
{
    ct_stage *s = NULL;
    npy_buf f = npy_make(1, dict, data, len);
    write_file(tmp_path(name), f.b, f.n);
    free(f.b);
    ct_error_clear();
    ct_status st = ct_npy_open(tmp_path(name), NULL, &s);
    CHECK(st == CT_OK || s == NULL);
    ct_stage_close(s);
    return st;
}

static void test_npy_errors(void)
{
    float v[12] = {0};
    npy_buf x = npy_x4(1); /* 128-byte header, data ends at 176 */
    ct_stage *s = NULL;
    CHECK(x.header == 128 && x.n == 176);

    /* truncated data: the offset where it ends and where it should */
    write_file(tmp_path("trunc.npy"), x.b, x.n - 5);
    CHECK_FAILS(ct_npy_open(tmp_path("trunc.npy"), NULL, &s), CT_ERR_DATA, "trunc.npy", "offset 171",
                "expected it to end at offset 176");
    CHECK(s == NULL);
    CHECK_FAILS(ct_npy_open_memory(x.b, x.n - 5, NULL, 0, "mtrunc", &s), CT_ERR_DATA, "mtrunc", "offset 171");
    /* extra bytes */
    unsigned char *big = malloc(x.n + 3);
    memcpy(big, x.b, x.n);
    memset(big + x.n, 0, 3);
    CHECK_FAILS(ct_npy_open_memory(big, x.n + 3, NULL, 0, "extra", &s), CT_ERR_DATA, "extra", "offset 176",
                "3 more");
    free(big);
    /* truncated header and preamble */
    CHECK_FAILS(ct_npy_open_memory(x.b, 60, NULL, 0, "hcut", &s), CT_ERR_DATA, "hcut", "inside the header");
    CHECK_FAILS(ct_npy_open_memory(x.b, 9, NULL, 0, "pcut", &s), CT_ERR_DATA, "pcut", "preamble");
    CHECK_FAILS(ct_npy_open_memory(x.b, 0, NULL, 0, "empty", &s), CT_ERR_DATA, "empty", "not a .npy");

    /* bad magic, version */
    write_file(tmp_path("magic.npy"), "\x93NUMPZ\x01\x00\x10\x00", 10);
    CHECK_FAILS(ct_npy_open(tmp_path("magic.npy"), NULL, &s), CT_ERR_DATA, "magic.npy", "offset 0", "magic");
    x.b[6] = 4;
    CHECK_FAILS(ct_npy_open_memory(x.b, x.n, NULL, 0, "v4", &s), CT_ERR_DATA, "v4", "offset 6", "version 4.0");
    x.b[6] = 1;
    CHECK_FAILS(ct_npy_open(tmp_path("missing.npy"), NULL, &s), CT_ERR_DATA, "missing.npy", "No such file");

    /* bad headers, with the offset of the fault (the dict starts at 10) */
    CHECK_FAILS(npy_open_dict("h1.npy", "{'descr': '<f4' 'fortran_order': False, 'shape': (4, 3), }", v, 48),
                CT_ERR_DATA, "h1.npy", "offset 26", "expected ',' or '}'");
    CHECK_FAILS(npy_open_dict("h2.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", v, 48),
                CT_ERR_DATA, "h2.npy", "offset 44", "fortran_order");
    CHECK_FAILS(npy_open_dict("h3.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (4, 3), }", v, 48),
                CT_ERR_DATA, "h3.npy", "unsupported dtype '<c8'");
    CHECK_FAILS(npy_open_dict("h4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (12), }", v, 48),
                CT_ERR_DATA, "h4.npy", "(n,)");
    CHECK_FAILS(npy_open_dict("h5.npy", "{'descr': '<f4', 'fortran_order': False}", v, 48), CT_ERR_DATA, "h5.npy",
                "lacks the key 'shape'");
    CHECK_FAILS(npy_open_dict("h6.npy", "{'descr': '<f4', 'descr': '<f4', 'shape': (12,)}", v, 48), CT_ERR_DATA,
                "h6.npy", "offset 27", "twice");
    CHECK_FAILS(npy_open_dict("h7.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), 'x': 1}", v, 48),
                CT_ERR_DATA, "h7.npy", "unknown .npy header key 'x'");
    CHECK_FAILS(npy_open_dict("h8.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (12,)}", v,
                              48), CT_ERR_DATA, "h8.npy", "structured");
    CHECK_FAILS(npy_open_dict("h9.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-12,)}", v, 48),
                CT_ERR_DATA, "h9.npy", "offset 61");
    CHECK_FAILS(npy_open_dict("h10.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", v, 4),
                CT_ERR_DATA, "h10.npy", "scalar");
    CHECK_FAILS(npy_open_dict("h11.npy", "{'descr': '|f4', 'fortran_order': False, 'shape': (12,)}", v, 48),
                CT_ERR_DATA, "h11.npy", "byte order");
    CHECK_FAILS(npy_open_dict("h12.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (12,)} x", v, 48),
                CT_ERR_DATA, "h12.npy", "end of the header");
    CHECK_FAILS(npy_open_dict("h13.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3)}", v, 0),
                CT_ERR_DATA, "h13.npy", "no samples");
    CHECK_FAILS(npy_open_dict("h14.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (12,)}", v, 48),
                CT_ERR_DATA, "h14.npy", "True or False");
    CHECK_FAILS(npy_open_dict("h15.npy",
                              "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9)}",
                              v, 48), CT_ERR_DATA, "h15.npy", "2^62");

    /* labels: count mismatch, negative label (offset of that element), rank-1 float ok, bad type */
    write_file(tmp_path("x4.npy"), x.b, x.n);
    const int32_t l3[3] = {0, 1, 2}, lneg[4] = {0, 1, -1, 2};
    npy_buf y = npy_make_simple(1, "<i4", "(3,)", l3, sizeof l3);
    write_file(tmp_path("y3.npy"), y.b, y.n);
    CHECK_FAILS(ct_npy_open(tmp_path("x4.npy"), tmp_path("y3.npy"), &s), CT_ERR_DATA, "y3.npy", "count mismatch",
                "x4.npy");
    free(y.b);
    y = npy_make_simple(1, "<i4", "(4,)", lneg, sizeof lneg);
    write_file(tmp_path("yneg.npy"), y.b, y.n);
    CHECK_FAILS(ct_npy_open(tmp_path("x4.npy"), tmp_path("yneg.npy"), &s), CT_ERR_DATA, "yneg.npy",
                "offset 136", "negative");
    CHECK(s == NULL);
    free(y.b);
    free(x.b);
}

/* A bigger file read through many pread()s, from threads. */
static void test_npy_threads(void)
{
    enum { N = 300, D = 97 };
    uint16_t *v = malloc(N * D * sizeof *v);
    for (int i = 0; i < N * D; i++) v[i] = (uint16_t)(i * 31);
    npy_buf x = npy_make_simple(2, "<u2", "(300, 97)", v, N * D * sizeof *v);
    uint8_t lab[N];
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 7);
    npy_buf y = npy_make_simple(1, "|u1", "(300,)", lab, N);
    write_file(tmp_path("big_x.npy"), x.b, x.n);
    write_file(tmp_path("big_y.npy"), y.b, y.n);
    ct_stage *s = NULL;
    CHECK(ct_npy_open(tmp_path("big_x.npy"), tmp_path("big_y.npy"), &s) == CT_OK);
    if (s) {
        dump d;
        CHECK(s->num_classes == 7 && dump_stage(s, &d) == CT_OK);
        int same = 1;
        for (int i = 0; i < N * D; i++) same &= d.x[i] == (float)v[i];
        for (int i = 0; i < N; i++) same &= d.y[i] == (float)lab[i];
        CHECK(same);
        dump_free(&d);
        check_threads(s, 3);
    }
    ct_stage_close(s);
    free(v), free(x.b), free(y.b);
}

/* --- HDF5 ------------------------------------------------------------------- */

enum { H5_N = 600, H5_H = 4, H5_W = 3 };

static unsigned char h5_pixel(int i, int j) { return (unsigned char)((i * 7 + j * 13) % 251); }

static void h5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank, const hsize_t *dims,
                     const void *data, int chunked)
{
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    if (chunked) {
        hsize_t chunk[H5S_MAX_RANK];
        for (int i = 0; i < rank; i++) chunk[i] = i == 0 ? 37 : dims[i];
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t d = H5Dcreate2(loc, name, file_type, sp, lcpl, dcpl, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
}

static void make_h5(const char *path)
{
    unsigned char *img = malloc(H5_N * H5_H * H5_W);
    int64_t lab[H5_N], neg[H5_N];
    double dv[H5_N * 2];
    for (int i = 0; i < H5_N; i++) {
        for (int j = 0; j < H5_H * H5_W; j++) img[i * H5_H * H5_W + j] = h5_pixel(i, j);
        lab[i] = i % 10;
        neg[i] = i == 321 ? -1 : 0;
        dv[2 * i] = i * 0.25, dv[2 * i + 1] = -i;
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    hsize_t dims[3] = {H5_N, H5_H, H5_W}, d1 = H5_N, d1short = H5_N - 1, d2[2] = {H5_N, 2};
    h5_write(f, "images", H5T_STD_U8LE, H5T_NATIVE_UCHAR, 3, dims, img, 0);
    h5_write(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d1, lab, 0);
    h5_write(f, "/train/images_z", H5T_STD_U8LE, H5T_NATIVE_UCHAR, 3, dims, img, 1);
    h5_write(f, "/train/targets", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, 2, d2, dv, 1);
    h5_write(f, "short_labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &d1short, lab, 0);
    h5_write(f, "neg_labels", H5T_STD_I32LE, H5T_NATIVE_INT64, 1, &d1, neg, 0);
    int one = 1;
    h5_write(f, "scalar", H5T_STD_I32LE, H5T_NATIVE_INT, 0, NULL, &one, 0);
    H5Fclose(f);
    free(img);
}

static void check_h5_images(ct_stage *s, int with_labels)
{
    dump d;
    CHECK(s->length == H5_N && s->x_shape.rank == 2 && s->x_shape.dims[0] == H5_H && s->x_shape.dims[1] == H5_W);
    CHECK(dump_stage(s, &d) == CT_OK);
    int same = 1;
    for (int i = 0; i < H5_N; i++) {
        for (int j = 0; j < H5_H * H5_W; j++) same &= d.x[i * H5_H * H5_W + j] == h5_pixel(i, j);
        if (with_labels) same &= d.y[i] == (float)(i % 10);
    }
    CHECK_MSG(same, "HDF5 samples read back wrong");
    /* random order, one get at a time */
    float x[H5_H * H5_W], y[2];
    for (int k = 0; k < 2000; k++) {
        int64_t pos = (int64_t)((k * 7919u + 13u) % H5_N);
        ct_sample smp = {x, y, -1, 0};
        CHECK(ct_stage_get(s, pos, &smp) == CT_OK);
        if (memcmp(x, d.x + pos * H5_H * H5_W, sizeof x) != 0 || smp.index != pos) {
            CHECK_MSG(0, "get(%lld) differs", (long long)pos);
            break;
        }
    }
    dump_free(&d);
}

static void test_hdf5(void)
{
    const char *path = tmp_path("data.h5");
    make_h5(path);
    ct_stage *s = NULL;
    CHECK(ct_hdf5_open(path, "images", "labels", &s) == CT_OK);
    if (s) {
        CHECK(s->num_classes == 10 && s->y_shape.rank == 1 && s->y_shape.dims[0] == 1);
        check_h5_images(s, 1);
        check_threads(s, 2);
        uint64_t c;
        CHECK(ct_stage_seek(s, 599) == CT_OK && ct_stage_tell(s, &c) == CT_OK && c == 599);
    }
    ct_stage_close(s);

    /* chunked and compressed, in a group; rank-2 float64 big-endian rows */
    s = NULL;
    CHECK(ct_hdf5_open(path, "/train/images_z", "train/targets", &s) == CT_OK);
    if (s) {
        CHECK(s->num_classes == 0 && s->y_shape.rank == 1 && s->y_shape.dims[0] == 2);
        dump d;
        CHECK(dump_stage(s, &d) == CT_OK);
        CHECK(d.y[2 * 401] == 100.25f && d.y[2 * 401 + 1] == -401.0f);
        dump_free(&d);
        check_h5_images(s, 0);
        check_threads(s, 1);
    }
    ct_stage_close(s);

    /* no labels */
    s = NULL;
    CHECK(ct_hdf5_open(path, "images", NULL, &s) == CT_OK);
    if (s) CHECK(s->y_shape.rank == 0 && s->num_classes == 0);
    ct_stage_close(s);

    CHECK_FAILS(ct_hdf5_open(path, "imagez", "labels", &s), CT_ERR_DATA, "data.h5", "'imagez'", "'images'");
    CHECK(s == NULL);
    CHECK_FAILS(ct_hdf5_open(path, "images", "nope/labels", &s), CT_ERR_DATA, "data.h5", "'nope/labels'");
    CHECK_FAILS(ct_hdf5_open(path, "images", "short_labels", &s), CT_ERR_DATA, "data.h5", "count mismatch",
                "599", "600");
    CHECK_FAILS(ct_hdf5_open(path, "scalar", NULL, &s), CT_ERR_DATA, "data.h5", "'scalar'", "rank 0");
    CHECK_FAILS(ct_hdf5_open(path, "images", "neg_labels", &s), CT_ERR_DATA, "data.h5", "negative", "321");
    CHECK_FAILS(ct_hdf5_open(path, "train", NULL, &s), CT_ERR_DATA, "data.h5", "'train' is not a data set");
    CHECK_FAILS(ct_hdf5_open(tmp_path("missing.h5"), "images", NULL, &s), CT_ERR_DATA, "missing.h5",
                "No such file");
    write_file(tmp_path("fake.h5"), "not hdf5 at all", 15);
    CHECK_FAILS(ct_hdf5_open(tmp_path("fake.h5"), "images", NULL, &s), CT_ERR_DATA, "fake.h5", "not an HDF5");
}

/* --- images ----------------------------------------------------------------- */

enum { IMG_H = 6, IMG_W = 5 };

/* The test pattern: channel c of pixel (y, x). */
static unsigned char pat(int y, int x, int c) { return (unsigned char)((y * 40 + x * 9 + c * 70 + 3) % 256); }

static const png_color test_palette[16] = {
    {0, 255, 10},  {16, 239, 20},  {32, 223, 30},  {48, 207, 40},  {64, 191, 50},  {80, 175, 60},
    {96, 159, 70}, {112, 143, 80}, {128, 127, 90}, {144, 111, 100}, {160, 95, 110}, {176, 79, 120},
    {192, 63, 130}, {208, 47, 140}, {224, 31, 150}, {240, 15, 160},
};

typedef enum { P_RGB, P_GRAY, P_PALETTE, P_RGB16, P_RGBA, P_GRAY4_ALPHA_TRNS, P_RGB_INTERLACED, P_GRAY_ALPHA } png_kind;

/* What the decoder must give (RGB) for pixel (y, x) of each kind. */
static void expect_rgb(png_kind k, int y, int x, unsigned char rgb[3])
{
    switch (k) {
    case P_GRAY:
    case P_GRAY_ALPHA: rgb[0] = rgb[1] = rgb[2] = pat(y, x, 0); break;
    case P_GRAY4_ALPHA_TRNS: rgb[0] = rgb[1] = rgb[2] = (unsigned char)(((y + x) % 16) * 17); break;
    case P_PALETTE: {
        png_color c = test_palette[(y * 3 + x) % 16];
        rgb[0] = c.red, rgb[1] = c.green, rgb[2] = c.blue;
        break;
    }
    default:
        for (int c = 0; c < 3; c++) rgb[c] = pat(y, x, c);
    }
}

static void write_png(const char *path, png_kind k, int h, int w)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK_MSG(0, "libpng failed writing %s", path);
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    static const int types[] = {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_PALETTE,
                                PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA, PNG_COLOR_TYPE_GRAY,
                                PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_GRAY_ALPHA};
    int depth = k == P_RGB16 ? 16 : k == P_GRAY4_ALPHA_TRNS ? 4 : 8;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, types[k],
                 k == P_RGB_INTERLACED ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (k == P_PALETTE) {
        png_set_PLTE(png, info, test_palette, 16);
        png_byte trans[3] = {0, 128, 255}; /* transparency is dropped too */
        png_set_tRNS(png, info, trans, 3, NULL);
    }
    if (k == P_GRAY4_ALPHA_TRNS) {
        png_color_16 t = {0, 0, 0, 0, 5};
        png_set_tRNS(png, info, NULL, 0, &t);
    }
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    unsigned char *rows = calloc((size_t)h, rowbytes);
    png_bytep *rp = malloc((size_t)h * sizeof *rp);
    for (int y = 0; y < h; y++) {
        unsigned char *r = rows + (size_t)y * rowbytes;
        rp[y] = r;
        for (int x = 0; x < w; x++) {
            unsigned char rgb[3];
            expect_rgb(k, y, x, rgb);
            switch (k) {
            case P_RGB:
            case P_RGB_INTERLACED: memcpy(r + 3 * x, rgb, 3); break;
            case P_GRAY: r[x] = rgb[0]; break;
            case P_GRAY_ALPHA: r[2 * x] = rgb[0], r[2 * x + 1] = (unsigned char)(x * 50); break;
            case P_PALETTE: r[x] = (unsigned char)((y * 3 + x) % 16); break;
            case P_RGBA:
                memcpy(r + 4 * x, rgb, 3);
                r[4 * x + 3] = (unsigned char)(y * 40); /* not premultiplied: alpha just goes */
                break;
            case P_RGB16:
                for (int c = 0; c < 3; c++) { /* high byte the pattern, low byte noise */
                    r[6 * x + 2 * c] = rgb[c];
                    r[6 * x + 2 * c + 1] = (unsigned char)(x * 77 + c);
                }
                break;
            case P_GRAY4_ALPHA_TRNS: r[x / 2] |= (unsigned char)(((y + x) % 16) << (x % 2 ? 0 : 4)); break;
            }
        }
    }
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    free(rp);
}

/* JPEG of the pattern: 1 (gray), 3 (RGB) or 4 (CMYK) components, no
 * chroma subsampling. */
static void write_jpeg(const char *path, int comps, int quality)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = IMG_W;
    ci.image_height = IMG_H;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    for (int c = 0; c < ci.num_components; c++) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
    jpeg_start_compress(&ci, TRUE);
    unsigned char row[IMG_W * 4];
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < IMG_W; x++)
            for (int c = 0; c < comps; c++) row[x * comps + c] = pat(y, x, c);
        JSAMPROW rp = row;
        jpeg_write_scanlines(&ci, &rp, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
}

/* Decode with libjpeg directly (default settings), as the reference. */
static void jpeg_reference(const char *path, int comps, float *out)
{
    size_t n;
    unsigned char *d = read_file(path, &n);
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, d, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    ci.out_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&ci);
    unsigned char row[IMG_W * 3];
    while (ci.output_scanline < ci.output_height) {
        int y = (int)ci.output_scanline;
        JSAMPROW rp = row;
        jpeg_read_scanlines(&ci, &rp, 1);
        for (int i = 0; i < IMG_W * comps; i++) out[y * IMG_W * comps + i] = row[i];
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(d);
}

typedef struct folder_file {
    const char *rel;
    int kind; /* png_kind, or 100 + components for a JPEG */
    int label;
} folder_file;

/* In the order the source must list them. */
static const folder_file folder_files[] = {
    {"birds/B.PNG", P_RGB, 0},           {"birds/a.png", P_GRAY, 0},   {"birds/c.jpeg", 103, 0},
    {"birds/sub/z.png", P_PALETTE, 0},   {"cats/g.JPG", 101, 1},       {"cats/x.png", P_RGB16, 1},
    {"cats/y.png", P_RGBA, 1},           {"dogs/d.png", P_RGB_INTERLACED, 2},
    {"dogs/e.png", P_GRAY4_ALPHA_TRNS, 2}, {"dogs/f.png", P_GRAY_ALPHA, 2},
};
enum { FOLDER_N = sizeof folder_files / sizeof folder_files[0] };

static void make_folder(const char *root)
{
    char p[512];
    make_dir(root);
    const char *dirs[] = {"birds", "birds/sub", "cats", "dogs", ".git", "dogs/.cache"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        FMT(p, "%s/%s", root, dirs[i]);
        make_dir(p);
    }
    for (int i = 0; i < FOLDER_N; i++) {
        FMT(p, "%s/%s", root, folder_files[i].rel);
        if (folder_files[i].kind >= 100) write_jpeg(p, folder_files[i].kind - 100, 100);
        else write_png(p, (png_kind)folder_files[i].kind, IMG_H, IMG_W);
    }
    /* ignored: other extensions, hidden files and directories, a file at the root */
    const char *junk[] = {"birds/notes.txt", "birds/.hidden.png", "dogs/.cache/q.png", ".git/x.png", "top.png"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        FMT(p, "%s/%s", root, junk[i]);
        write_file(p, "junk", 4);
    }
}

/* Expected floats of file i, at its own size, with `channels`. */
static void expect_image(const char *root, int i, int channels, float *out)
{
    int kind = folder_files[i].kind;
    if (kind >= 100) {
        char p[512];
        FMT(p, "%s/%s", root, folder_files[i].rel);
        float rgb[IMG_H * IMG_W * 3];
        int comps = kind - 100;
        jpeg_reference(p, comps == 1 ? 1 : 3, rgb);
        for (int k = 0; k < IMG_H * IMG_W; k++)
            for (int c = 0; c < channels; c++) {
                if (comps == 1) out[k * channels + c] = rgb[k];
                else if (channels == 3) out[k * 3 + c] = rgb[k * 3 + c];
                else out[k] = (float)floor(0.299 * rgb[3 * k] + 0.587 * rgb[3 * k + 1] + 0.114 * rgb[3 * k + 2] + 0.5);
            }
        return;
    }
    for (int y = 0; y < IMG_H; y++)
        for (int x = 0; x < IMG_W; x++) {
            unsigned char rgb[3];
            float *o = out + (y * IMG_W + x) * channels;
            expect_rgb((png_kind)kind, y, x, rgb);
            if (channels == 3) o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
            else o[0] = (float)floor(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] + 0.5);
        }
}

static int near_all(const float *a, const float *b, int n, double tol)
{
    for (int i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > tol) return 0;
    return 1;
}

static void test_folder_read(const char *root, int channels)
{
    ct_image_folder_options o = {0, 0, channels};
    ct_stage *s = NULL;
    ct_status st = ct_image_folder_open(root, channels == 3 ? NULL : &o, &s);
    CHECK_MSG(st == CT_OK, "%s", ct_error_message());
    if (!s) return;
    CHECK(s->length == FOLDER_N && s->num_classes == 3);
    CHECK(s->x_shape.rank == 3 && s->x_shape.dims[0] == IMG_H && s->x_shape.dims[1] == IMG_W &&
          s->x_shape.dims[2] == channels);
    CHECK(!strcmp(ct_image_folder_class_name(s, 0), "birds") && !strcmp(ct_image_folder_class_name(s, 1), "cats") &&
          !strcmp(ct_image_folder_class_name(s, 2), "dogs") && ct_image_folder_class_name(s, 3) == NULL &&
          ct_image_folder_class_name(s, -1) == NULL);
    dump d;
    st = dump_stage(s, &d);
    CHECK_MSG(st == CT_OK, "%s", ct_error_message());
    int n = IMG_H * IMG_W * channels;
    for (int i = 0; st == CT_OK && i < FOLDER_N; i++) {
        float want[IMG_H * IMG_W * 3];
        expect_image(root, i, channels, want);
        /* PIL's fixed-point grayscale may round the other way by 1 */
        double tol = channels == 1 && folder_files[i].kind != P_GRAY ? 1 : 0;
        CHECK_MSG(near_all(d.x + i * n, want, n, tol), "%s (%d channels) decoded wrong", folder_files[i].rel,
                  channels);
        CHECK(d.y[i] == (float)folder_files[i].label);
        if (folder_files[i].kind >= 100) { /* and close to what was written */
            float pattern[IMG_H * IMG_W * 3];
            png_kind like = folder_files[i].kind == 101 ? P_GRAY : P_RGB;
            for (int y = 0; y < IMG_H; y++)
                for (int x = 0; x < IMG_W; x++) {
                    unsigned char rgb[3];
                    expect_rgb(like, y, x, rgb);
                    for (int c = 0; c < channels; c++)
                        pattern[(y * IMG_W + x) * channels + c] =
                            channels == 3 ? rgb[c] : (float)(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
                }
            CHECK_MSG(near_all(d.x + i * n, pattern, n, 12), "%s is far from the pixels written",
                      folder_files[i].rel);
        }
    }
    dump_free(&d);
    check_threads(s, 3);
    ct_stage_close(s);
}

static void test_folder_resize(const char *root)
{
    enum { TH = 3, TW = 11 };
    ct_image_folder_options o = {TH, TW, 3};
    ct_stage *s = NULL;
    CHECK(ct_image_folder_open(root, &o, &s) == CT_OK);
    if (!s) return;
    CHECK(s->x_shape.dims[0] == TH && s->x_shape.dims[1] == TW && s->x_shape.dims[2] == 3);
    float x[TH * TW * 3], y[1];
    ct_sample smp = {x, y, -1, 0};
    for (int i = 0; i < FOLDER_N; i++) {
        if (folder_files[i].kind >= 100) continue;
        CHECK(ct_stage_get(s, i, &smp) == CT_OK);
        int ok = 1;
        for (int ty = 0; ty < TH; ty++)
            for (int tx = 0; tx < TW; tx++) {
                /* PIL NEAREST: the source pixel under the target pixel's centre */
                int sy = (int)floor((ty + 0.5) * IMG_H / TH), sx = (int)floor((tx + 0.5) * IMG_W / TW);
                unsigned char rgb[3];
                expect_rgb((png_kind)folder_files[i].kind, sy, sx, rgb);
                for (int c = 0; c < 3; c++) ok &= x[(ty * TW + tx) * 3 + c] == rgb[c];
            }
        CHECK_MSG(ok, "%s resized wrong", folder_files[i].rel);
    }
    check_threads(s, 1);
    ct_stage_close(s);
}

static void test_decode_memory(const char *root)
{
    char p[512];
    FMT(p, "%s/birds/B.PNG", root);
    size_t n;
    unsigned char *d = read_file(p, &n);
    int h = 0, w = 0;
    float x[IMG_H * IMG_W * 3], want[IMG_H * IMG_W * 3];
    CHECK(ct_image_info_memory(d, n, "B.PNG", &h, &w) == CT_OK && h == IMG_H && w == IMG_W);
    h = w = 0;
    CHECK(ct_image_decode_memory(d, n, "B.PNG", 3, 0, 0, x, &h, &w) == CT_OK && h == IMG_H && w == IMG_W);
    expect_image(root, 0, 3, want);
    CHECK(memcmp(x, want, sizeof x) == 0);
    CHECK(ct_image_decode_memory(d, n, "B.PNG", 3, 1, 1, x, NULL, NULL) == CT_OK && x[0] == pat(3, 2, 0));
    CHECK_FAILS(ct_image_decode_memory(d, n, "B.PNG", 2, 0, 0, x, NULL, NULL), CT_ERR_USAGE, "channels");
    CHECK_FAILS(ct_image_decode_memory(d, n, "B.PNG", 3, 4, 0, x, NULL, NULL), CT_ERR_USAGE, "target size");
    CHECK_FAILS(ct_image_decode_memory(d, n / 2, "half.png", 3, 0, 0, x, NULL, NULL), CT_ERR_DATA, "half.png",
                "truncated");
    CHECK_FAILS(ct_image_decode_memory(d, 0, "zero.png", 3, 0, 0, x, NULL, NULL), CT_ERR_DATA, "zero.png");
    free(d);
}

/* Runs fn with stderr going to a file; returns how many bytes it wrote. */
static long stderr_bytes_during(void (*fn)(const char *), const char *arg)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = fopen(tmp_path("stderr.txt"), "w+");
    dup2(fileno(cap), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(cap, 0, SEEK_END);
    long n = ftell(cap);
    fclose(cap);
    return n;
}

/* Every file after the first of root/a is broken: get() must say which. */
static void read_broken(const char *root)
{
    static const char *const names[] = {"1.png", "2.png", "3.jpg", "4.png", "5.png", "6.jpg", "7.png", "8.jpg"};
    ct_stage *s = NULL;
    ct_status st = ct_image_folder_open(root, NULL, &s);
    CHECK_MSG(st == CT_OK, "%s", ct_error_message());
    if (!s) return;
    CHECK(s->length == 8);
    float x[IMG_H * IMG_W * 3], y[1];
    for (int i = 0; i < 8; i++) {
        ct_sample smp = {x, y, -1, 0};
        ct_error_clear();
        st = ct_stage_get(s, i, &smp);
        if (i == 0) {
            CHECK(st == CT_OK);
            continue;
        }
        CHECK_MSG(st == CT_ERR_DATA, "%s gave %s", names[i], ct_status_name(st));
        CHECK_STR_CONTAINS(ct_error_message(), names[i]);
    }
    ct_stage_close(s);
}

static void test_folder_errors(void)
{
    char p[512], root[512];
    ct_stage *s = NULL;
    /* empty root, a class without images, no root */
    FMT(root, "%s", tmp_path("empty"));
    make_dir(root);
    CHECK_FAILS(ct_image_folder_open(root, NULL, &s), CT_ERR_DATA, "empty", "no class");
    FMT(p, "%s/a", root);
    make_dir(p);
    FMT(p, "%s/a/readme.txt", root);
    write_file(p, "x", 1);
    CHECK_FAILS(ct_image_folder_open(root, NULL, &s), CT_ERR_DATA, "empty/a", "no images");
    CHECK_FAILS(ct_image_folder_open(tmp_path("nowhere"), NULL, &s), CT_ERR_DATA, "nowhere");
    ct_image_folder_options bad = {5, 0, 3};
    CHECK_FAILS(ct_image_folder_open(root, &bad, &s), CT_ERR_USAGE, "target size");
    CHECK(s == NULL);

    /* sizes that differ from the first image's */
    FMT(root, "%s", tmp_path("mixed"));
    make_dir(root);
    FMT(p, "%s/a", root);
    make_dir(p);
    FMT(p, "%s/a/1.png", root);
    write_png(p, P_RGB, IMG_H, IMG_W);
    FMT(p, "%s/a/2.png", root);
    write_png(p, P_RGB, 4, 4);
    CHECK(ct_image_folder_open(root, NULL, &s) == CT_OK);
    if (s) {
        float x[IMG_H * IMG_W * 3], y[1];
        ct_sample smp = {x, y, -1, 0};
        CHECK(ct_stage_get(s, 0, &smp) == CT_OK);
        CHECK_FAILS(ct_stage_get(s, 1, &smp), CT_ERR_DATA, "2.png", "4x4", "1.png");
    }
    ct_stage_close(s);
    /* a first image that cannot be read fails open */
    FMT(p, "%s/a/0.png", root);
    write_file(p, "\x89PNG\r\n\x1a\n", 8);
    CHECK_FAILS(ct_image_folder_open(root, NULL, &s), CT_ERR_DATA, "0.png");

    /* corrupt files: truncated PNG and JPEG, wrong signature, bad CRC,
     * CMYK, garbage after a JPEG SOI, an empty file */
    FMT(root, "%s", tmp_path("broken"));
    make_dir(root);
    FMT(p, "%s/a", root);
    make_dir(p);
    FMT(p, "%s/a/1.png", root);
    write_png(p, P_RGB, IMG_H, IMG_W);
    size_t n;
    unsigned char *good = read_file(p, &n);
    FMT(p, "%s/a/2.png", root);
    write_file(p, good, n - 30);
    FMT(p, "%s/a/4.png", root);
    write_file(p, "GIF89a....", 10);
    good[40] ^= 0x55; /* inside IHDR or IDAT: a CRC error */
    FMT(p, "%s/a/5.png", root);
    write_file(p, good, n);
    free(good);
    FMT(p, "%s/a/3.jpg", root);
    write_jpeg(p, 3, 90);
    good = read_file(p, &n);
    write_file(p, good, n / 2);
    FMT(p, "%s/a/8.jpg", root);
    memset(good + 2, 0x41, n - 2);
    write_file(p, good, n);
    free(good);
    FMT(p, "%s/a/6.jpg", root);
    write_jpeg(p, 4, 90);
    FMT(p, "%s/a/7.png", root);
    write_file(p, "", 0);
    long err_bytes = stderr_bytes_during(read_broken, root);
    CHECK_MSG(err_bytes == 0, "the decoders wrote %ld bytes to stderr", err_bytes);
    FMT(p, "%s/a/6.jpg", root);
    good = read_file(p, &n);
    float x[IMG_H * IMG_W * 3];
    CHECK_FAILS(ct_image_decode_memory(good, n, "cmyk.jpg", 3, 0, 0, x, NULL, NULL), CT_ERR_DATA, "cmyk.jpg",
                "CMYK");
    free(good);
}

static void test_images(void)
{
    char root[512];
    FMT(root, "%s", tmp_path("folder"));
    make_folder(root);
    test_folder_read(root, 3);
    test_folder_read(root, 1);
    test_folder_resize(root);
    test_decode_memory(root);
    /* a trailing slash on the root */
    char slash[600];
    FMT(slash, "%s/", root);
    ct_stage *s = NULL;
    CHECK(ct_image_folder_open(slash, NULL, &s) == CT_OK && s && !strcmp(ct_image_folder_class_name(s, 1), "cats"));
    ct_stage_close(s);
    test_folder_errors();
}

int main(void)
{
    if (!tmp_make("test_sources")) return 1;
    test_npy_dtypes();
    test_npy_labels();
    test_npy_errors();
    test_npy_threads();
    test_hdf5();
    test_images();
    tmp_remove();
    return ct_test_report("test_sources");
}
