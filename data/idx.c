/* IDX files (MNIST, Fashion-MNIST) as a source stage.
 *
 * A file is read once at open, through one small reader interface that
 * hides where the bytes come from: zlib's gz* functions for paths (they
 * read plain and gzip files alike), memcpy for plain memory, and inflate
 * for gzip in memory. The parser checks the header, then reads exactly the
 * data the header claims, growing its buffer as bytes actually arrive, so
 * a header that lies about its size (or a zip bomb) costs at most about
 * twice the real data. Values stay in the file's element type (native byte
 * order) and are converted to float one sample at a time in next(): the
 * Fashion-MNIST train set is 47 MB as uint8 and would be 188 MB as float.
 *
 * Offsets in messages count bytes of the decompressed stream. */
#include "memsource.h"
#include "sources.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Refuse files whose data would exceed this: a corrupt header must not
 * make us try to allocate terabytes. */
#define IDX_MAX_BYTES (4ull << 30)
#define IDX_MAX_DIMS 8
/* First allocation for the data; it doubles up to the claimed size. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)

/* --- element types -------------------------------------------------- */

typedef struct idx_type {
    unsigned char code;
    unsigned char size;   /* bytes per element */
    unsigned char is_int; /* usable as labels */
    const char *name;
    void (*to_float)(const void *src, int64_t n, float *dst);
    double (*get)(const void *src, int64_t i);
} idx_type;

#define IDX_CONVERTERS(suffix, ctype)                                    \
    static void to_float_##suffix(const void *src, int64_t n, float *dst) \
    {                                                                    \
        const ctype *s = src;                                            \
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];            \
    }                                                                    \
    static double get_##suffix(const void *src, int64_t i) { return (double)((const ctype *)src)[i]; }

IDX_CONVERTERS(u8, uint8_t)
IDX_CONVERTERS(i8, int8_t)
IDX_CONVERTERS(i16, int16_t)
IDX_CONVERTERS(i32, int32_t)
IDX_CONVERTERS(f32, float)
IDX_CONVERTERS(f64, double)

static const idx_type idx_types[] = {
    {0x08, 1, 1, "uint8", to_float_u8, get_u8},     {0x09, 1, 1, "int8", to_float_i8, get_i8},
    {0x0B, 2, 1, "int16", to_float_i16, get_i16},   {0x0C, 4, 1, "int32", to_float_i32, get_i32},
    {0x0D, 4, 0, "float32", to_float_f32, get_f32}, {0x0E, 8, 0, "float64", to_float_f64, get_f64},
};

static const idx_type *idx_type_find(unsigned code)
{
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == code) return &idx_types[i];
    return NULL;
}

/* IDX data is big-endian; the arrays we keep are native. */
static void idx_to_native(unsigned char *buf, uint64_t n, int size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    (void)buf, (void)n, (void)size;
#else
    for (uint64_t i = 0; i < n; i++, buf += size)
        for (int a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = buf[a];
            buf[a] = buf[b];
            buf[b] = t;
        }
#endif
}

/* --- readers ---------------------------------------------------------- */

typedef struct idx_reader idx_reader;
struct idx_reader {
    const char *name;
    uint64_t offset;  /* decompressed bytes consumed so far */
    int truncated_gz; /* the gzip stream ended early (for the message) */
    /* Read up to n bytes; *got < n only at the end of the stream. */
    ct_status (*read)(idx_reader *r, unsigned char *buf, size_t n, size_t *got);
    gzFile gz;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    z_stream zs;
    int zs_live, zs_end;
};

static ct_status read_gzfile(idx_reader *r, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        /* gzread takes an unsigned count and returns int. */
        unsigned chunk = n - *got > (1u << 30) ? (1u << 30) : (unsigned)(n - *got);
        int k = gzread(r->gz, buf + *got, chunk);
        int errnum = Z_OK;
        const char *msg = gzerror(r->gz, &errnum);
        if (k < 0 || (errnum != Z_OK && errnum != Z_BUF_ERROR)) {
            if (errnum == Z_ERRNO)
                return CT_FAIL(errno == EISDIR ? CT_ERR_DATA : CT_ERR_IO, "%s: read failed: %s", r->name, strerror(errno));
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: corrupt gzip data: %s", r->name,
                           (unsigned long long)(r->offset + *got), msg);
        }
        *got += (size_t)k;
        if ((unsigned)k < chunk) {
            r->truncated_gz = errnum == Z_BUF_ERROR;
            break;
        }
    }
    return CT_OK;
}

static ct_status read_plain_mem(idx_reader *r, unsigned char *buf, size_t n, size_t *got)
{
    size_t left = r->mem_len - r->mem_pos;
    *got = n < left ? n : left;
    if (*got) memcpy(buf, r->mem + r->mem_pos, *got);
    r->mem_pos += *got;
    return CT_OK;
}

/* Hands inflate the next slice of input (avail_in is only 32 bits). */
static void inflate_feed(idx_reader *r)
{
    if (r->zs.avail_in > 0 || r->mem_pos >= r->mem_len) return;
    size_t left = r->mem_len - r->mem_pos;
    r->zs.next_in = (unsigned char *)(r->mem + r->mem_pos);
    r->zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
    r->mem_pos += r->zs.avail_in;
}

/* After one gzip member, continue only if another member follows (as
 * gzread does); anything else after the stream is ignored. */
static void inflate_member_end(idx_reader *r)
{
    inflate_feed(r);
    if (r->zs.avail_in >= 2 && r->zs.next_in[0] == 0x1f && r->zs.next_in[1] == 0x8b)
        inflateReset(&r->zs);
    else
        r->zs_end = 1;
}

static ct_status read_inflate_mem(idx_reader *r, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n && !r->zs_end) {
        size_t want = n - *got;
        uInt chunk = want > UINT_MAX ? UINT_MAX : (uInt)want;
        inflate_feed(r);
        r->zs.next_out = buf + *got;
        r->zs.avail_out = chunk;
        int rc = inflate(&r->zs, Z_NO_FLUSH);
        *got += chunk - r->zs.avail_out;
        if (rc == Z_STREAM_END) {
            inflate_member_end(r);
        } else if (rc == Z_BUF_ERROR && r->zs.avail_in == 0) {
            r->zs_end = 1; /* input exhausted inside the stream */
            r->truncated_gz = 1;
        } else if (rc != Z_OK) {
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: corrupt gzip data: %s", r->name,
                           (unsigned long long)(r->offset + *got),
                           r->zs.msg ? r->zs.msg : "inflate failed");
        }
    }
    return CT_OK;
}

static ct_status reader_read(idx_reader *r, void *buf, size_t n, size_t *got)
{
    ct_status st = r->read(r, buf, n, got);
    r->offset += *got;
    return st;
}

static ct_status reader_open_file(idx_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->name = path;
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(r->gz, 1u << 17);
    r->read = read_gzfile;
    return CT_OK;
}

static ct_status reader_open_memory(idx_reader *r, const unsigned char *p, size_t n, const char *name)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->mem = p;
    r->mem_len = n;
    r->read = read_plain_mem;
    if (n < 2 || p[0] != 0x1f || p[1] != 0x8b) return CT_OK;
    /* 15 + 32: the largest window, and detect gzip or zlib headers. */
    if (inflateInit2(&r->zs, 15 + 32) != Z_OK)
        return CT_FAIL(CT_ERR_NOMEM, "%s: cannot start zlib inflate", name);
    r->zs_live = 1;
    r->read = read_inflate_mem;
    return CT_OK;
}

static void reader_close(idx_reader *r)
{
    if (r->gz) gzclose(r->gz);
    if (r->zs_live) inflateEnd(&r->zs);
    r->gz = NULL;
    r->zs_live = 0;
}

/* --- parsing ---------------------------------------------------------- */

typedef struct idx_array {
    const idx_type *type;
    int ndims;
    int64_t dims[IDX_MAX_DIMS];
    int64_t count;         /* product of dims */
    unsigned header_bytes; /* 4 + 4 * ndims */
    void *data;            /* count elements of `type`, native order */
} idx_array;

static ct_status check_magic(const idx_reader *r, const unsigned char m[4], size_t got)
{
    if (got < 4)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %zu: file ends after %zu bytes, too short for an IDX "
                       "header (expected 00 00 <type> <ndims>)",
                       r->name, got, got);
    if (m[0] != 0 || m[1] != 0)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset 0: magic %02x %02x %02x %02x is not an IDX magic "
                       "(expected 00 00 <type> <ndims>)",
                       r->name, m[0], m[1], m[2], m[3]);
    if (!idx_type_find(m[2]))
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset 2: unknown IDX type code 0x%02x (expected 08, 09, 0b, "
                       "0c, 0d or 0e)",
                       r->name, m[2]);
    if (m[3] == 0 || m[3] > IDX_MAX_DIMS)
        return CT_FAIL(CT_ERR_DATA, "%s: offset 3: %d dimensions (expected 1 to %d)", r->name,
                       m[3], IDX_MAX_DIMS);
    return CT_OK;
}

/* Decodes the dims and checks their product stays within IDX_MAX_BYTES. */
static ct_status parse_dims(const idx_reader *r, const unsigned char *p, idx_array *a)
{
    uint64_t count = 1;
    for (int i = 0; i < a->ndims; i++, p += 4) {
        uint64_t d = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        if (d == 0)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %d: dimension %d is 0", r->name, 4 + 4 * i,
                           i);
        /* d < 2^32 and count <= IDX_MAX_BYTES < 2^33, so this cannot wrap. */
        count *= d;
        if (count * a->type->size > IDX_MAX_BYTES)
            return CT_FAIL(CT_ERR_DATA,
                           "%s: offset %d: dimensions claim more than %llu bytes of data",
                           r->name, 4 + 4 * i, (unsigned long long)IDX_MAX_BYTES);
        a->dims[i] = (int64_t)d;
    }
    a->count = (int64_t)count;
    return CT_OK;
}

static ct_status read_header(idx_reader *r, idx_array *a)
{
    unsigned char h[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    CT_TRY(reader_read(r, h, 4, &got));
    CT_TRY(check_magic(r, h, got));
    a->type = idx_type_find(h[2]);
    a->ndims = h[3];
    a->header_bytes = 4 + 4u * (unsigned)a->ndims;
    CT_TRY(reader_read(r, h + 4, 4u * (unsigned)a->ndims, &got));
    if (got < 4u * (unsigned)a->ndims)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %llu: file ends inside the header: expected %u bytes, "
                       "found %llu",
                       r->name, (unsigned long long)r->offset, a->header_bytes,
                       (unsigned long long)r->offset);
    return parse_dims(r, h + 4, a);
}

static ct_status fail_truncated(const idx_reader *r, const idx_array *a, uint64_t want)
{
    return CT_FAIL(CT_ERR_DATA,
                   "%s: offset %llu: file too short: expected %llu bytes (the header claims "
                   "%lld %s values), found %llu%s",
                   r->name, (unsigned long long)r->offset,
                   (unsigned long long)(a->header_bytes + want), (long long)a->count,
                   a->type->name, (unsigned long long)r->offset,
                   r->truncated_gz ? " (the gzip stream is cut short)" : "");
}

/* Reads the claimed data, growing the buffer only as bytes arrive. */
static ct_status read_data(idx_reader *r, idx_array *a)
{
    size_t want = (size_t)a->count * a->type->size, have = 0;
    size_t cap = want < IDX_FIRST_CHUNK ? want : IDX_FIRST_CHUNK;
    unsigned char *buf = malloc(cap);
    if (!buf) return CT_FAIL(CT_ERR_NOMEM, "%s: cannot allocate %zu bytes", r->name, cap);
    a->data = buf;
    for (;;) {
        size_t got;
        CT_TRY(reader_read(r, buf + have, cap - have, &got));
        have += got;
        if (have < cap) return fail_truncated(r, a, want);
        if (have == want) break;
        cap = want - cap < cap ? want : 2 * cap;
        buf = realloc(a->data, cap);
        if (!buf) return CT_FAIL(CT_ERR_NOMEM, "%s: cannot allocate %zu bytes", r->name, cap);
        a->data = buf;
    }
    idx_to_native(a->data, (uint64_t)a->count, a->type->size);
    return CT_OK;
}

/* The data must end the file: extra bytes mean the header is wrong. */
static ct_status check_end(idx_reader *r, const idx_array *a)
{
    unsigned char extra[4096];
    size_t got;
    uint64_t end = r->offset;
    CT_TRY(reader_read(r, extra, sizeof extra, &got));
    if (got == 0) return CT_OK;
    return CT_FAIL(CT_ERR_DATA,
                   "%s: offset %llu: size mismatch: the header accounts for %llu bytes but "
                   "the file has %s%zu more",
                   r->name, (unsigned long long)end, (unsigned long long)end,
                   got == sizeof extra ? "at least " : "", got);
}

/* Labels: rank 1, an integer type, one per image (checked before reading
 * their data). */
static ct_status check_label_header(const idx_reader *r, const idx_array *y,
                                    const char *images_name, int64_t n_images)
{
    if (y->ndims != 1)
        return CT_FAIL(CT_ERR_DATA, "%s: offset 3: labels must have 1 dimension, found %d",
                       r->name, y->ndims);
    if (!y->type->is_int)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset 2: wrong label type %s (expected an integer type: uint8, "
                       "int8, int16 or int32)",
                       r->name, y->type->name);
    if (y->dims[0] != n_images)
        return CT_FAIL(CT_ERR_DATA, "%s: offset 4: count mismatch: %lld labels, but %s holds %lld samples",
                       r->name, (long long)y->dims[0], images_name, (long long)n_images);
    return CT_OK;
}

/* Labels must be >= 0; returns the largest. */
static ct_status check_labels(const idx_reader *r, const idx_array *y, double *max_label)
{
    *max_label = 0;
    for (int64_t i = 0; i < y->count; i++) {
        double v = y->type->get(y->data, i);
        if (v < 0)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: label %lld of sample %lld is negative",
                           r->name,
                           (unsigned long long)(y->header_bytes + (uint64_t)i * y->type->size),
                           (long long)v, (long long)i);
        if (v > *max_label) *max_label = v;
    }
    return CT_OK;
}

static ct_status read_images(idx_reader *r, idx_array *x)
{
    CT_TRY(read_header(r, x));
    CT_TRY(read_data(r, x));
    return check_end(r, x);
}

static ct_status read_labels(idx_reader *r, idx_array *y, const char *images_name,
                             int64_t n_images, double *max_label)
{
    CT_TRY(read_header(r, y));
    CT_TRY(check_label_header(r, y, images_name, n_images));
    CT_TRY(read_data(r, y));
    CT_TRY(check_end(r, y));
    return check_labels(r, y, max_label);
}

/* --- the stage -------------------------------------------------------- */

typedef struct idx_stage {
    ct_mem_source src; /* base, name, cursor */
    idx_array x, y;      /* y.data is NULL without labels */
    int64_t sample_size; /* elements per sample */
} idx_stage;

static ct_status idx_get(ct_stage *st, int64_t i, ct_sample *out)
{
    idx_stage *s = (idx_stage *)st;
    const unsigned char *src = s->x.data;
    s->x.type->to_float(src + (size_t)(i * s->sample_size) * s->x.type->size, s->sample_size, out->x);
    if (s->y.data) out->y[0] = (float)s->y.type->get(s->y.data, i);
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void idx_close(ct_stage *st)
{
    idx_stage *s = (idx_stage *)st;
    free(s->x.data);
    free(s->y.data);
    free(s->src.name);
    free(s);
}

static const ct_stage_vtable idx_vtable = {"idx", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell, ct_mem_source_seek,
                                           idx_close, idx_get};

static void idx_set_shapes(idx_stage *s, double max_label)
{
    ct_stage *b = &s->src.base;
    b->vt = &idx_vtable;
    b->length = s->x.dims[0];
    /* A rank-1 file holds one scalar per sample; give it a feature axis. */
    if (s->x.ndims == 1)
        b->x_shape = ct_shape1(1);
    else
        b->x_shape = ct_shape_make(s->x.ndims - 1, s->x.dims + 1);
    s->sample_size = ct_shape_numel(&b->x_shape);
    if (s->y.data) {
        b->y_shape = ct_shape1(1);
        b->num_classes = (int64_t)max_label + 1;
    }
}

/* Reads images (and labels when lab is not NULL) into a new stage. */
static ct_status idx_load(idx_reader *img, idx_reader *lab, ct_stage **out)
{
    double max_label = 0;
    idx_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", img->name);
    s->src.base.vt = &idx_vtable; /* so close() works from here on */
    s->src.name = strdup(img->name);
    ct_status st = s->src.name ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", img->name);
    if (st == CT_OK) st = read_images(img, &s->x);
    if (st == CT_OK && lab) st = read_labels(lab, &s->y, img->name, s->x.dims[0], &max_label);
    if (st != CT_OK) goto fail;
    idx_set_shapes(s, max_label);
    *out = &s->src.base;
    return CT_OK;
fail:
    idx_close(&s->src.base);
    return st;
}

ct_status ct_idx_open(const char *images, const char *labels, ct_stage **out)
{
    idx_reader img, lab;
    *out = NULL;
    ct_status st = reader_open_file(&img, images);
    if (st != CT_OK) return st;
    if (labels) st = reader_open_file(&lab, labels);
    if (st == CT_OK) st = idx_load(&img, labels ? &lab : NULL, out);
    reader_close(&img);
    if (labels) reader_close(&lab);
    return st;
}

ct_status ct_idx_open_memory(const unsigned char *images, size_t images_len,
                             const unsigned char *labels, size_t labels_len, const char *name,
                             ct_stage **out)
{
    idx_reader img, lab;
    char lab_name[512];
    *out = NULL;
    if (!name) name = "idx";
    snprintf(lab_name, sizeof lab_name, "%s (labels)", name);
    memset(&lab, 0, sizeof lab);
    ct_status st = reader_open_memory(&img, images, images_len, name);
    if (st == CT_OK && labels) st = reader_open_memory(&lab, labels, labels_len, lab_name);
    if (st == CT_OK) st = idx_load(&img, labels ? &lab : NULL, out);
    reader_close(&img);
    reader_close(&lab);
    return st;
}
