/* Tests for the data sources (IDX, CSV) and the in-memory data set.
 *
 * Small files are written into a fresh directory under /tmp and read back
 * exactly; malformed files must fail with CT_ERR_DATA and a message that
 * names the file and the byte offset (IDX) or the line (CSV). When the
 * Debian Fashion-MNIST package is installed, its test labels are checked
 * against known values too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/inputs.h"
#include "ct_test.h"
#include "dataset.h"
#include "sources.h"

#include "tmpfiles.h"

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(gzwrite(g, data, (unsigned)n) == (int)n);
    gzclose(g);
}

static unsigned char *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(1 << 16);
    *n = f ? fread(buf, 1, 1 << 16, f) : 0;
    if (f) fclose(f);
    return buf;
}

/* --- building IDX files -------------------------------------------------- */

typedef struct idx_buf {
    unsigned char b[4096];
    size_t n;
} idx_buf;

static void put_be(idx_buf *f, uint64_t v, int size)
{
    for (int i = size - 1; i >= 0; i--) f->b[f->n++] = (unsigned char)(v >> (8 * i));
}

static void idx_header(idx_buf *f, int type, int ndims, const uint32_t *dims)
{
    f->n = 0;
    f->b[f->n++] = 0;
    f->b[f->n++] = 0;
    f->b[f->n++] = (unsigned char)type;
    f->b[f->n++] = (unsigned char)ndims;
    for (int i = 0; i < ndims; i++) put_be(f, dims[i], 4);
}

static void put_f32(idx_buf *f, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_be(f, u, 4);
}

/* 3 uint8 images of 2x2 with pixel value 10*i + j, labels 0, 2, 1. */
static void make_u8_pair(idx_buf *img, idx_buf *lab)
{
    uint32_t d3[] = {3, 2, 2}, d1[] = {3};
    idx_header(img, 0x08, 3, d3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) img->b[img->n++] = (unsigned char)(10 * i + j);
    idx_header(lab, 0x08, 1, d1);
    lab->b[lab->n++] = 0;
    lab->b[lab->n++] = 2;
    lab->b[lab->n++] = 1;
}

/* --- helpers for errors --------------------------------------------------- */


static ct_status open_idx_file(const char *name, const idx_buf *img, const char *lname,
                               const idx_buf *lab)
{
    ct_stage *s = NULL;
    write_file(tmp_path(name), img->b, img->n);
    if (lab) write_file(tmp_path(lname), lab->b, lab->n);
    ct_status st = ct_idx_open(tmp_path(name), lab ? tmp_path(lname) : NULL, &s);
    CHECK(st == CT_OK || s == NULL);
    ct_stage_close(s);
    return st;
}

/* --- IDX ------------------------------------------------------------------ */

static void check_u8_stage(ct_stage *s)
{
    float x[4], y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof;
    CHECK(s->length == 3 && s->num_classes == 3);
    CHECK(s->x_shape.rank == 2 && s->x_shape.dims[0] == 2 && s->x_shape.dims[1] == 2);
    CHECK(s->y_shape.rank == 1 && s->y_shape.dims[0] == 1);
    const float labels[] = {0, 2, 1};
    for (int i = 0; i < 3; i++) {
        CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof);
        CHECK(smp.index == i && y[0] == labels[i]);
        for (int j = 0; j < 4; j++) CHECK(x[j] == (float)(10 * i + j));
    }
    CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && eof);
    /* rewind, and jump around */
    uint64_t c;
    CHECK(ct_stage_tell(s, &c) == CT_OK && c == 3);
    CHECK(ct_stage_reset(s, 1) == CT_OK && ct_stage_tell(s, &c) == CT_OK && c == 0);
    CHECK(ct_stage_seek(s, 2) == CT_OK && ct_stage_tell(s, &c) == CT_OK && c == 2);
    CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof && smp.index == 2 && x[3] == 23);
    CHECK(ct_stage_seek(s, 3) == CT_OK && ct_stage_next(s, &smp, &eof) == CT_OK && eof);
    CHECK(ct_stage_seek(s, 4) != CT_OK);
    CHECK(ct_stage_seek(s, 0) == CT_OK && ct_stage_next(s, &smp, &eof) == CT_OK && x[1] == 1);
}

static void test_idx_u8(void)
{
    idx_buf img, lab;
    ct_stage *s = NULL;
    make_u8_pair(&img, &lab);
    write_file(tmp_path("img.idx"), img.b, img.n);
    write_file(tmp_path("lab.idx"), lab.b, lab.n);
    CHECK(ct_idx_open(tmp_path("img.idx"), tmp_path("lab.idx"), &s) == CT_OK);
    if (s) check_u8_stage(s);
    ct_stage_close(s);

    /* gzip files through the path opener and through memory */
    write_gz(tmp_path("img.idx.gz"), img.b, img.n);
    write_gz(tmp_path("lab.idx.gz"), lab.b, lab.n);
    s = NULL;
    CHECK(ct_idx_open(tmp_path("img.idx.gz"), tmp_path("lab.idx.gz"), &s) == CT_OK);
    if (s) check_u8_stage(s);
    ct_stage_close(s);

    size_t gi, gl;
    unsigned char *zi = read_whole(tmp_path("img.idx.gz"), &gi);
    unsigned char *zl = read_whole(tmp_path("lab.idx.gz"), &gl);
    CHECK(zi[0] == 0x1f && zi[1] == 0x8b);
    s = NULL;
    CHECK(ct_idx_open_memory(zi, gi, zl, gl, "mem.gz", &s) == CT_OK);
    if (s) check_u8_stage(s);
    ct_stage_close(s);
    /* a gzip stream cut short */
    CHECK_FAILS(ct_idx_open_memory(zi, gi - 12, NULL, 0, "cut.gz", &s), CT_ERR_DATA, "cut.gz",
                "offset");
    free(zi);
    free(zl);

    s = NULL;
    CHECK(ct_idx_open_memory(img.b, img.n, lab.b, lab.n, "mem", &s) == CT_OK);
    if (s) check_u8_stage(s);
    ct_stage_close(s);
}

/* Without labels: y_shape rank 0, y untouched, num_classes 0. */
static void test_idx_no_labels(void)
{
    idx_buf img, lab;
    ct_stage *s = NULL;
    make_u8_pair(&img, &lab);
    CHECK(ct_idx_open_memory(img.b, img.n, NULL, 0, "nolab", &s) == CT_OK);
    if (!s) return;
    CHECK(s->y_shape.rank == 0 && s->num_classes == 0 && s->length == 3);
    float x[4], y[1] = {-7};
    ct_sample smp = {x, y, -1, 0};
    int eof;
    CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof && y[0] == -7 && x[2] == 2);
    ct_dataset d;
    CHECK(ct_dataset_from_stage(s, &d) == CT_OK);
    CHECK(d.n == 3 && d.y_size == 0 && d.x_size == 4 && d.x[4 * 2 + 3] == 23);
    ct_dataset_free(&d);
    ct_stage_close(s);
}

static void test_idx_int16_float32(void)
{
    idx_buf f;
    ct_stage *s = NULL;
    float x[3], y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof;

    /* rank 1 int16: one scalar per sample, shape (1); int8 labels */
    uint32_t d4[] = {4};
    const int16_t v16[] = {-300, 2, 32767, -32768};
    idx_header(&f, 0x0B, 1, d4);
    for (int i = 0; i < 4; i++) put_be(&f, (uint16_t)v16[i], 2);
    idx_buf lab;
    idx_header(&lab, 0x09, 1, d4);
    for (int i = 0; i < 4; i++) lab.b[lab.n++] = (unsigned char)(4 - i);
    write_file(tmp_path("i16.idx"), f.b, f.n);
    write_file(tmp_path("i8lab.idx"), lab.b, lab.n);
    CHECK(ct_idx_open(tmp_path("i16.idx"), tmp_path("i8lab.idx"), &s) == CT_OK);
    if (s) {
        CHECK(s->x_shape.rank == 1 && s->x_shape.dims[0] == 1 && s->num_classes == 5);
        for (int i = 0; i < 4; i++) {
            CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof);
            CHECK(x[0] == v16[i] && y[0] == 4 - i);
        }
    }
    ct_stage_close(s);

    /* float32, 2 samples of 3 */
    uint32_t d2[] = {2, 3};
    const float v32[] = {1.5f, -2.25f, 1e-3f, 3.0e38f, -0.0f, 123456.789f};
    idx_header(&f, 0x0D, 2, d2);
    for (int i = 0; i < 6; i++) put_f32(&f, v32[i]);
    write_file(tmp_path("f32.idx"), f.b, f.n);
    s = NULL;
    CHECK(ct_idx_open(tmp_path("f32.idx"), NULL, &s) == CT_OK);
    if (s) {
        CHECK(s->x_shape.rank == 1 && s->x_shape.dims[0] == 3 && s->length == 2);
        for (int i = 0; i < 2; i++) {
            CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof);
            for (int j = 0; j < 3; j++) CHECK(x[j] == v32[3 * i + j]);
        }
    }
    ct_stage_close(s);

    /* float64 and int32 */
    uint32_t d1[] = {2};
    const double v64[] = {0.1, -1e10};
    idx_header(&f, 0x0E, 1, d1);
    for (int i = 0; i < 2; i++) {
        uint64_t u;
        memcpy(&u, &v64[i], 8);
        put_be(&f, u, 8);
    }
    idx_header(&lab, 0x0C, 1, d1);
    put_be(&lab, 70000, 4);
    put_be(&lab, 3, 4);
    s = NULL;
    CHECK(ct_idx_open_memory(f.b, f.n, lab.b, lab.n, "f64", &s) == CT_OK);
    if (s) {
        CHECK(s->num_classes == 70001);
        CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && x[0] == (float)0.1 && y[0] == 70000);
        CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && x[0] == (float)-1e10 && y[0] == 3);
    }
    ct_stage_close(s);
}

static void test_idx_errors(void)
{
    idx_buf img, lab, bad;
    make_u8_pair(&img, &lab);

    /* truncated: the header claims 12 data bytes */
    bad = img;
    bad.n -= 2;
    CHECK_FAILS(open_idx_file("short.idx", &bad, NULL, NULL), CT_ERR_DATA, "short.idx",
                "offset", "expected 28", "found 26");
    bad.n = 10; /* inside the dims */
    CHECK_FAILS(open_idx_file("short2.idx", &bad, NULL, NULL), CT_ERR_DATA, "short2.idx",
                "offset", "header");
    bad.n = 2;
    CHECK_FAILS(open_idx_file("short3.idx", &bad, NULL, NULL), CT_ERR_DATA, "short3.idx",
                "offset");
    bad.n = 0;
    CHECK_FAILS(open_idx_file("empty.idx", &bad, NULL, NULL), CT_ERR_DATA, "empty.idx",
                "offset");

    /* foreign files */
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    memcpy(bad.b, png, sizeof png);
    bad.n = sizeof png;
    CHECK_FAILS(open_idx_file("image.png", &bad, NULL, NULL), CT_ERR_DATA, "image.png",
                "offset 0", "89 50 4e 47", "expected 00 00 <type> <ndims>");
    const char *text = "label,pixel\n1,2\n";
    memcpy(bad.b, text, strlen(text));
    bad.n = strlen(text);
    CHECK_FAILS(open_idx_file("text.csv", &bad, NULL, NULL), CT_ERR_DATA, "text.csv",
                "offset 0", "6c 61 62 65");

    /* wrong magic: unknown type, bad ndims, nonzero first byte */
    bad = img;
    bad.b[2] = 0x07;
    CHECK_FAILS(open_idx_file("type.idx", &bad, NULL, NULL), CT_ERR_DATA, "type.idx",
                "offset 2", "0x07");
    bad = img;
    bad.b[3] = 0;
    CHECK_FAILS(open_idx_file("nd0.idx", &bad, NULL, NULL), CT_ERR_DATA, "nd0.idx",
                "offset 3");
    bad.b[3] = 9;
    CHECK_FAILS(open_idx_file("nd9.idx", &bad, NULL, NULL), CT_ERR_DATA, "nd9.idx",
                "offset 3");
    bad = img;
    bad.b[0] = 1;
    CHECK_FAILS(open_idx_file("magic.idx", &bad, NULL, NULL), CT_ERR_DATA, "magic.idx",
                "offset 0", "01 00 08 03");

    /* zero and absurd dimensions */
    bad = img;
    memset(bad.b + 8, 0, 4);
    CHECK_FAILS(open_idx_file("zero.idx", &bad, NULL, NULL), CT_ERR_DATA, "zero.idx",
                "offset 8", "is 0");
    bad = img;
    memset(bad.b + 4, 0xff, 12);
    CHECK_FAILS(open_idx_file("huge.idx", &bad, NULL, NULL), CT_ERR_DATA, "huge.idx",
                "offset 8", "more than");
    /* 1 GB claimed, a few bytes present: fails without allocating it */
    uint32_t big[] = {1000, 1000, 1000};
    idx_header(&bad, 0x08, 3, big);
    memset(bad.b + bad.n, 0, 100);
    bad.n += 100;
    CHECK_FAILS(open_idx_file("claims.idx", &bad, NULL, NULL), CT_ERR_DATA, "claims.idx",
                "offset 116", "expected 1000000016");

    /* trailing garbage */
    bad = img;
    bad.b[bad.n++] = 0;
    CHECK_FAILS(open_idx_file("tail.idx", &bad, NULL, NULL), CT_ERR_DATA, "tail.idx",
                "offset 28", "size mismatch");

    /* label problems */
    uint32_t d2[] = {2}, d3[] = {3};
    idx_header(&bad, 0x08, 1, d2);
    bad.b[bad.n++] = 0;
    bad.b[bad.n++] = 1;
    CHECK_FAILS(open_idx_file("i.idx", &img, "few.idx", &bad), CT_ERR_DATA, "few.idx",
                "offset 4", "i.idx", "2 labels", "3 samples");
    idx_header(&bad, 0x0D, 1, d3);
    for (int i = 0; i < 3; i++) put_f32(&bad, 1);
    CHECK_FAILS(open_idx_file("i.idx", &img, "flt.idx", &bad), CT_ERR_DATA, "flt.idx",
                "offset 2", "float32");
    idx_header(&bad, 0x09, 1, d3);
    bad.b[bad.n++] = 1;
    bad.b[bad.n++] = 0xff; /* -1 */
    bad.b[bad.n++] = 1;
    CHECK_FAILS(open_idx_file("i.idx", &img, "neg.idx", &bad), CT_ERR_DATA, "neg.idx",
                "offset 9", "negative");
    CHECK_FAILS(open_idx_file("i.idx", &img, "rank2.idx", &img), CT_ERR_DATA, "rank2.idx",
                "offset 3");
    bad = lab;
    bad.b[bad.n++] = 1;
    CHECK_FAILS(open_idx_file("i.idx", &img, "labtail.idx", &bad), CT_ERR_DATA, "labtail.idx",
                "offset 11", "size mismatch");

    /* files that cannot be opened are bad input (exit 2), like a malformed one */
    ct_stage *s = NULL;
    CHECK_FAILS(ct_idx_open(tmp_path("missing.idx"), NULL, &s), CT_ERR_DATA, "missing.idx",
                "No such file");
    CHECK_FAILS(ct_idx_open(tmp_path("img.idx"), tmp_path("nolabels.idx"), &s), CT_ERR_DATA,
                "nolabels.idx");
    CHECK(s == NULL);
}

/* The Debian package's test labels: 10000 of them, first five 9 2 1 1 6
 * (read once with zcat | xxd). */
static void test_fashion_mnist(void)
{
    const char *dir = "/usr/share/datasets/fashion-mnist/";
    char images[256], labels[256];
    snprintf(images, sizeof images, "%st10k-images-idx3-ubyte.gz", dir);
    snprintf(labels, sizeof labels, "%st10k-labels-idx1-ubyte.gz", dir);
    if (access(labels, R_OK) != 0 || access(images, R_OK) != 0) {
        printf("test_data: Fashion-MNIST not installed, skipping the real-file check\n");
        return;
    }
    ct_stage *s = NULL;
    CHECK(ct_idx_open(images, labels, &s) == CT_OK);
    if (!s) return;
    CHECK(s->length == 10000 && s->num_classes == 10);
    CHECK(s->x_shape.rank == 2 && s->x_shape.dims[0] == 28 && s->x_shape.dims[1] == 28);
    const float first[] = {9, 2, 1, 1, 6};
    float x[784], y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof;
    for (int i = 0; i < 5; i++) {
        CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof);
        CHECK_MSG(y[0] == first[i], "label %d is %g, expected %g", i, y[0], first[i]);
    }
    ct_stage_close(s);
}

/* --- CSV -------------------------------------------------------------------- */

static ct_stage *csv_mem(const char *text, const ct_csv_options *opt)
{
    ct_stage *s = NULL;
    ct_status st = ct_csv_open_memory(text, strlen(text), "t.csv", opt, &s);
    CHECK_MSG(st == CT_OK, "%s", ct_error_message());
    return s;
}

/* Reads every row: x into xs (row-major), y into ys. */
static int csv_drain(ct_stage *s, float *xs, float *ys, int max_rows)
{
    int n = 0, eof = 0;
    int64_t nx = ct_shape_numel(&s->x_shape);
    ct_stage_reset(s, 0);
    while (n < max_rows) {
        ct_sample smp = {xs + n * nx, ys + n, -1, 0};
        if (ct_stage_next(s, &smp, &eof) != CT_OK || eof) break;
        n++;
    }
    return n;
}

static void test_csv_good(void)
{
    float x[64], y[16];
    ct_csv_options opt = {.delimiter = ',', .header = 1};
    ct_stage *s = csv_mem("a,b,label\n1,2,0\n3,4,1\n", &opt);
    if (s) {
        CHECK(s->x_shape.rank == 1 && s->x_shape.dims[0] == 2 && s->length == 2);
        CHECK(s->y_shape.rank == 1 && s->y_shape.dims[0] == 1 && s->num_classes == 2);
        CHECK(csv_drain(s, x, y, 16) == 2);
        CHECK(x[0] == 1 && x[1] == 2 && y[0] == 0 && x[2] == 3 && x[3] == 4 && y[1] == 1);
        uint64_t c;
        CHECK(ct_stage_seek(s, 1) == CT_OK && ct_stage_tell(s, &c) == CT_OK && c == 1);
        CHECK(ct_stage_seek(s, 3) != CT_OK);
    }
    ct_stage_close(s);

    /* label by name (first column), then by index */
    opt.label_column = "a";
    s = csv_mem("a,b,c\n1,2,3\n4,5,6\n", &opt);
    if (s && csv_drain(s, x, y, 16) == 2)
        CHECK(y[0] == 1 && y[1] == 4 && x[0] == 2 && x[1] == 3 && x[2] == 5 && x[3] == 6);
    CHECK(s && s->num_classes == 5);
    ct_stage_close(s);
    opt.label_column = "1";
    s = csv_mem("a,b,c\n1,2,3\n4,5,6\n", &opt);
    if (s && csv_drain(s, x, y, 16) == 2) CHECK(y[0] == 2 && y[1] == 5 && x[0] == 1 && x[1] == 3);
    ct_stage_close(s);

    /* quotes, blanks, CRLF, empty lines, no final newline */
    opt.label_column = "z";
    s = csv_mem("\"x\" , \"y\"\"q\" ,z\r\n\r\n \"1.5\" ,2, 3\r\n  \r\n4,\"-5e-1\",6", &opt);
    if (s) {
        CHECK(s->length == 2 && s->num_classes == 7);
        CHECK(csv_drain(s, x, y, 16) == 2);
        CHECK(x[0] == 1.5f && x[1] == 2 && y[0] == 3 && x[2] == 4 && x[3] == -0.5f && y[1] == 6);
    }
    ct_stage_close(s);

    /* no header, other delimiter, regression targets */
    ct_csv_options semi = {.delimiter = ';', .header = 0, .label_column = "0"};
    s = csv_mem("0.5;1;2\n-1.25;3;4\n", &semi);
    if (s) {
        CHECK(s->num_classes == 0 && csv_drain(s, x, y, 16) == 2);
        CHECK(y[0] == 0.5f && y[1] == -1.25f && x[0] == 1 && x[3] == 4);
    }
    ct_stage_close(s);
    s = csv_mem("1,-1\n2,1\n", NULL); /* defaults: no header, label last */
    CHECK(s && s->num_classes == 0 && s->length == 2);
    ct_stage_close(s);

    /* the path opener names the file */
    write_file(tmp_path("ok.csv"), "f,l\n7,1\n", 8);
    s = NULL;
    ct_csv_options hdr = {.delimiter = ',', .header = 1, .label_column = "l"};
    CHECK(ct_csv_open(tmp_path("ok.csv"), &hdr, &s) == CT_OK);
    if (s && csv_drain(s, x, y, 16) == 1) CHECK(x[0] == 7 && y[0] == 1);
    ct_stage_close(s);
}

/* Larger than the first read buffer, so the file is read in pieces. */
static void test_csv_large(void)
{
    const int rows = 20000;
    char *text = malloc((size_t)rows * 32 + 32), *o = text;
    o += sprintf(o, "u,v,k\n");
    for (int i = 0; i < rows; i++) o += sprintf(o, "%d,%d.25,%d\n", i, -i, i % 3);
    write_file(tmp_path("large.csv"), text, (size_t)(o - text));
    free(text);
    ct_csv_options opt = {.delimiter = ',', .header = 1, .label_column = "k"};
    ct_stage *s = NULL;
    CHECK(ct_csv_open(tmp_path("large.csv"), &opt, &s) == CT_OK);
    if (!s) return;
    CHECK(s->length == rows && s->num_classes == 3);
    ct_dataset d;
    CHECK(ct_dataset_from_stage(s, &d) == CT_OK);
    CHECK(d.n == rows && d.x[2 * 12345] == 12345 && d.x[2 * 12345 + 1] == -12345.25f);
    CHECK(d.y[12345] == 12345 % 3 && d.y[rows - 1] == (rows - 1) % 3);
    ct_dataset_free(&d);
    ct_stage_close(s);
}

/* skip_rows drops physical lines (blank or not) before the header; line
 * numbers in messages still count from the top of the file. */
static void test_csv_skip_rows(void)
{
    float x[16], y[8];
    ct_csv_options opt = {.delimiter = ',', .header = 1, .label_column = "t", .skip_rows = 2};
    ct_stage *s = csv_mem("2,1,,\n\nf,t\n1,0\n2,1\n", &opt);
    if (s && csv_drain(s, x, y, 8) == 2) CHECK(x[0] == 1 && y[0] == 0 && x[1] == 2 && y[1] == 1);
    ct_stage_close(s);
    s = NULL;
    const char *bad = "3,1\nf,t\n1,0\nx,1\n";
    opt.skip_rows = 1;
    CHECK_FAILS(ct_csv_open_memory(bad, strlen(bad), "skip.csv", &opt, &s), CT_ERR_DATA,
                "skip.csv:4:");
    opt.skip_rows = 5;
    CHECK_FAILS(ct_csv_open_memory(bad, strlen(bad), "skip.csv", &opt, &s), CT_ERR_DATA,
                "no data rows");
    opt.skip_rows = -1;
    CHECK_FAILS(ct_csv_open_memory(bad, strlen(bad), "skip.csv", &opt, &s), CT_ERR_USAGE,
                "skip_rows");
}

/* The two CSVs shipped with the examples (sklearn's copies): row counts,
 * first and last rows as they appear in the files. */
static void test_csv_examples(void)
{
    ct_stage *s = NULL;
    ct_dataset d;
    ct_csv_options boston = {.delimiter = ',', .header = 1, .label_column = "MEDV", .skip_rows = 1};
    CHECK(ct_csv_open(CT_SOURCE_DIR "/examples/data/boston_house_prices.csv", &boston, &s) == CT_OK);
    if (s && ct_dataset_from_stage(s, &d) == CT_OK) {
        CHECK(d.n == 506 && d.x_size == 13 && d.num_classes == 0);
        CHECK(d.x[0] == 0.00632f && d.x[12] == 4.98f && d.y[0] == 24.0f);
        CHECK(d.x[505 * 13 + 12] == 7.88f && d.y[505] == 11.9f);
        ct_dataset_free(&d);
    }
    ct_stage_close(s);
    s = NULL;
    ct_csv_options cancer = {.delimiter = ',', .header = 0, .skip_rows = 1};
    CHECK(ct_csv_open(CT_SOURCE_DIR "/examples/data/breast_cancer.csv", &cancer, &s) == CT_OK);
    if (s && ct_dataset_from_stage(s, &d) == CT_OK) {
        CHECK(d.n == 569 && d.x_size == 30 && d.num_classes == 2);
        CHECK(d.x[0] == 17.99f && d.y[0] == 0);
        ct_dataset_free(&d);
    }
    ct_stage_close(s);
}

static ct_status csv_file(const char *name, const char *text, const ct_csv_options *opt)
{
    ct_stage *s = NULL;
    write_file(tmp_path(name), text, strlen(text));
    ct_status st = ct_csv_open(tmp_path(name), opt, &s);
    ct_stage_close(s);
    return st;
}

static void test_csv_errors(void)
{
    ct_csv_options opt = {.delimiter = ',', .header = 1};
    CHECK_FAILS(csv_file("ragged.csv", "a,b,c\n1,2,3\n4,5\n", &opt), CT_ERR_DATA,
                "ragged.csv:3:", "2 fields, expected 3");
    CHECK_FAILS(csv_file("nan.csv", "a,b,c\n1,2,3\n\n4,\"abc\",6\n", &opt), CT_ERR_DATA,
                "nan.csv:4:", "column 2 ('b')", "\"abc\" is not a number");
    CHECK_FAILS(csv_file("comma.csv", "a,b\n1,2.5.1\n", &opt), CT_ERR_DATA, "comma.csv:2:",
                "\"2.5.1\"");
    CHECK_FAILS(csv_file("empty.csv", "a,b,c\n1,,3\n", &opt), CT_ERR_DATA, "empty.csv:2:",
                "empty field");
    CHECK_FAILS(csv_file("inf.csv", "a,b\n1e40,1\n", &opt), CT_ERR_DATA, "inf.csv:2:",
                "finite");
    CHECK_FAILS(csv_file("quote.csv", "a,b\n\"1,2\n", &opt), CT_ERR_DATA, "quote.csv:2:",
                "quote");
    CHECK_FAILS(csv_file("header.csv", "a,b\n", &opt), CT_ERR_DATA, "header.csv",
                "no data rows");
    CHECK_FAILS(csv_file("blank.csv", "\n \r\n", &opt), CT_ERR_DATA, "blank.csv",
                "no data rows");
    CHECK_FAILS(csv_file("onecol.csv", "1\n2\n", NULL), CT_ERR_DATA, "onecol.csv:1:");
    opt.label_column = "price";
    CHECK_FAILS(csv_file("name.csv", "\n  \nrooms,age,value\n1,2,3\n", &opt), CT_ERR_DATA,
                "name.csv:3:", "'price'", "'rooms', 'age', 'value'");
    opt.label_column = "3";
    CHECK_FAILS(csv_file("index.csv", "a,b,c\n1,2,3\n", &opt), CT_ERR_DATA, "index.csv:1:",
                "index 3", "3 columns");
    ct_csv_options nohdr = {.delimiter = ',', .header = 0, .label_column = "label"};
    CHECK_FAILS(csv_file("nohdr.csv", "1,2\n", &nohdr), CT_ERR_DATA, "nohdr.csv:1:",
                "no header");
    ct_stage *s = NULL;
    CHECK_FAILS(ct_csv_open(tmp_path("missing.csv"), NULL, &s), CT_ERR_DATA, "missing.csv",
                "No such file");
    CHECK(s == NULL);
}

/* --- data sets -------------------------------------------------------------- */

/* n rows of 2 features (i, 10 * i) with y = i. */
static void make_ds(ct_dataset *d, int64_t n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->x_shape = ct_shape1(2);
    d->y_shape = ct_shape1(1);
    d->x_size = 2;
    d->y_size = 1;
    d->num_classes = n;
    d->x = malloc((size_t)(2 * n) * sizeof(float));
    d->y = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        d->x[2 * i] = (float)i;
        d->x[2 * i + 1] = 10.0f * (float)i;
        d->y[i] = (float)i;
    }
}

static void check_tail(int64_t n, double fraction, int64_t want_kept)
{
    ct_dataset d, t;
    make_ds(&d, n);
    CHECK(ct_dataset_split_tail(&d, fraction, &t) == CT_OK);
    CHECK_MSG(d.n == want_kept && t.n == n - want_kept, "n %lld fraction %g: kept %lld",
              (long long)n, fraction, (long long)d.n);
    CHECK(t.n == 0 || (t.y[0] == (float)want_kept && t.x[1] == 10.0f * (float)want_kept));
    CHECK(t.x_size == 2 && t.num_classes == n);
    ct_dataset_free(&d);
    ct_dataset_free(&t);
}

static void test_split_tail(void)
{
    /* Row counts as Keras computes them: int(n * (1. - split)). */
    check_tail(10, 0.1, 9);
    check_tail(10, 0.2, 8);
    check_tail(10, 0.3, 7);
    check_tail(7, 0.3, 4); /* 7 * 0.7 = 4.8999...: Keras keeps 4, not round() */
    check_tail(100, 0.33, 67);
    check_tail(60000, 0.1, 54000);
    check_tail(5, 0.0, 5);
    ct_dataset d, t;
    make_ds(&d, 1);
    CHECK_FAILS(ct_dataset_split_tail(&d, 0.5, &t), CT_ERR_DATA, "validation_split");
    CHECK_FAILS(ct_dataset_split_tail(&d, 1.0, &t), CT_ERR_USAGE, "validation_split");
    ct_dataset_free(&d);
}

static void test_split_random(void)
{
    ct_dataset a, ha, b, hb;
    make_ds(&a, 10);
    make_ds(&b, 10);
    CHECK(ct_dataset_split_random(&a, 0.3, 42, &ha) == CT_OK);
    CHECK(ct_dataset_split_random(&b, 0.3, 42, &hb) == CT_OK);
    CHECK(a.n == 7 && ha.n == 3);
    int seen[10] = {0}, moved = 0;
    for (int64_t i = 0; i < a.n; i++) {
        seen[(int)a.y[i]]++;
        CHECK(a.x[2 * i] == a.y[i] && a.x[2 * i + 1] == 10 * a.y[i]); /* rows stay whole */
        CHECK(a.y[i] == b.y[i]);
        moved += a.y[i] != (float)i;
    }
    for (int64_t i = 0; i < ha.n; i++) {
        seen[(int)ha.y[i]]++;
        CHECK(ha.y[i] == hb.y[i] && ha.x[2 * i] == ha.y[i]);
    }
    for (int i = 0; i < 10; i++) CHECK_MSG(seen[i] == 1, "row %d seen %d times", i, seen[i]);
    CHECK(moved > 0);
    ct_dataset_free(&b);
    ct_dataset_free(&hb);
    make_ds(&b, 10);
    CHECK(ct_dataset_split_random(&b, 0.3, 43, &hb) == CT_OK);
    int same = 1;
    for (int64_t i = 0; i < b.n; i++) same &= b.y[i] == a.y[i];
    CHECK(!same);
    ct_dataset_free(&a);
    ct_dataset_free(&ha);
    ct_dataset_free(&b);
    ct_dataset_free(&hb);
}

/* The per-feature statistics of [data] standardize (population std, as
 * sklearn's StandardScaler; a constant feature gets 1) and the z-scores
 * ct_inputs applies with them. */
static void test_standardize(void)
{
    /* features: (1, 2, 3, 6) and a constant 5 */
    const float rows[4][2] = {{1, 5}, {2, 5}, {3, 5}, {6, 5}};
    ct_feature_stats fs;
    CHECK(ct_feature_stats_init(&fs, 2) == CT_OK);
    ct_feature_stats_add(&fs, &rows[0][0], 4);
    float mean[2], std[2];
    ct_feature_stats_finish(&fs, mean, std);
    ct_feature_stats_free(&fs);
    /* mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5 */
    CHECK_NEAR(mean[0], 3.0, 1e-6);
    CHECK_NEAR(std[0], 1.8708286933869707, 1e-6);
    CHECK_NEAR(mean[1], 5.0, 1e-6);
    CHECK(std[1] == 1.0f);
    ct_inputs in = {.rescale = 2.0, .n_features = 2, .mean = mean, .std = std};
    float x[2] = {6, 5};
    ct_inputs_normalize_sample(&in, x, 2); /* rescale first, then the z-score */
    CHECK_NEAR(x[0], (12 - 3) / 1.8708286933869707, 1e-5);
    CHECK(x[1] == 5);

    /* many features with a large offset: sums in double keep the variance */
    enum { F = 300 };
    float *w = malloc(3 * F * sizeof(float)), m[F], sd[F];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < F; j++) w[F * i + j] = 1e4f + (float)j + (float)i;
    CHECK(ct_feature_stats_init(&fs, F) == CT_OK);
    for (int i = 0; i < 3; i++) ct_feature_stats_add(&fs, w + F * i, 1);
    ct_feature_stats_finish(&fs, m, sd);
    ct_feature_stats_free(&fs);
    CHECK_NEAR(m[299], 1e4 + 299 + 1, 1e-3);
    CHECK_NEAR(sd[299], sqrt(2.0 / 3.0), 1e-5);
    CHECK_NEAR(sd[0], sqrt(2.0 / 3.0), 1e-5);
    free(w);
}

static void test_dataset_from_csv(void)
{
    ct_csv_options opt = {.delimiter = ',', .header = 1, .label_column = "y"};
    ct_stage *s = csv_mem("y,a,b\n1,1,2\n0,3,4\n1,5,6\n", &opt);
    if (!s) return;
    ct_dataset d;
    CHECK(ct_dataset_from_stage(s, &d) == CT_OK);
    CHECK(d.n == 3 && d.x_size == 2 && d.y_size == 1 && d.num_classes == 2);
    CHECK(d.x[4] == 5 && d.x[5] == 6 && d.y[1] == 0);
    ct_dataset_free(&d);
    /* draining rewinds a stage that was read part way */
    float x[2], y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof;
    CHECK(ct_stage_next(s, &smp, &eof) == CT_OK);
    CHECK(ct_dataset_from_stage(s, &d) == CT_OK && d.n == 3);
    ct_dataset_free(&d);
    ct_dataset_free(NULL);
    ct_stage_close(s);
}

int main(void)
{
    if (!tmp_make("test_data")) return 1;
    test_idx_u8();
    test_idx_no_labels();
    test_idx_int16_float32();
    test_idx_errors();
    test_fashion_mnist();
    test_csv_good();
    test_csv_errors();
    test_csv_large();
    test_csv_skip_rows();
    test_csv_examples();
    test_split_tail();
    test_split_random();
    test_standardize();
    test_dataset_from_csv();
    tmp_remove();
    return ct_test_report("test_data");
}
