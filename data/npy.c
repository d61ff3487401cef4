/* NumPy .npy files as a source stage.
 *
 * The header (a Python dict literal) is parsed strictly: the three keys
 * numpy writes, each once, with string, bool and tuple-of-int values; any
 * other literal is refused with the byte offset where it went wrong. The
 * data is never loaded as a whole: files stay open and get() reads its
 * sample's bytes with pread() (thread-safe, no shared cursor) through a
 * small stack buffer, converting to float as it goes, so a file larger
 * than memory streams. The memory variant reads the same way from a copy
 * of the caller's bytes. Only the labels are scanned once at open (for
 * negative values and num_classes). */
#include "memsource.h"
#include "sources.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses more than 10000 bytes by default */
#define NPY_MAX_RANK (CT_MAX_DIMS + 1)
#define NPY_MAX_BYTES (1ull << 62)
#define NPY_MAX_LABEL 2147483647.0
#define NPY_CHUNK 16384

/* --- element types -------------------------------------------------- */

typedef struct npy_type {
    char kind; /* 'u', 'i', 'b', 'f' */
    int size;
    const char *name;
    void (*to_float)(const unsigned char *src, int64_t n, float *dst);
    void (*to_double)(const unsigned char *src, int64_t n, double *dst);
} npy_type;

/* memcpy loads: the source buffer is bytes, not an array of ctype. */
#define NPY_CONVERTERS(suffix, ctype)                                                  \
    static void to_float_##suffix(const unsigned char *src, int64_t n, float *dst)   \
    {                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                             \
            ctype v;                                                                  \
            memcpy(&v, src + i * (int64_t)sizeof v, sizeof v);                        \
            dst[i] = (float)v;                                                        \
        }                                                                             \
    }                                                                                 \
    static void to_double_##suffix(const unsigned char *src, int64_t n, double *dst) \
    {                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                             \
            ctype v;                                                                  \
            memcpy(&v, src + i * (int64_t)sizeof v, sizeof v);                        \
            dst[i] = (double)v;                                                       \
        }                                                                             \
    }

NPY_CONVERTERS(u8, uint8_t)
NPY_CONVERTERS(i8, int8_t)
NPY_CONVERTERS(u16, uint16_t)
NPY_CONVERTERS(i16, int16_t)
NPY_CONVERTERS(u32, uint32_t)
NPY_CONVERTERS(i32, int32_t)
NPY_CONVERTERS(u64, uint64_t)
NPY_CONVERTERS(i64, int64_t)
NPY_CONVERTERS(f32, float)
NPY_CONVERTERS(f64, double)

static void to_float_b1(const unsigned char *src, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++) dst[i] = src[i] != 0;
}

static void to_double_b1(const unsigned char *src, int64_t n, double *dst)
{
    for (int64_t i = 0; i < n; i++) dst[i] = src[i] != 0;
}

/* IEEE half: 1 sign, 5 exponent, 10 mantissa bits. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023u, bits;
    if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13; /* inf, nan */
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else {
        float f = (float)man * (1.0f / 16777216.0f); /* subnormal: man * 2^-24 */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void to_float_f16(const unsigned char *src, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, src + 2 * i, 2);
        dst[i] = half_to_float(v);
    }
}

static void to_double_f16(const unsigned char *src, int64_t n, double *dst)
{
    for (int64_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, src + 2 * i, 2);
        dst[i] = half_to_float(v);
    }
}

static const npy_type npy_types[] = {
    {'u', 1, "uint8", to_float_u8, to_double_u8},     {'i', 1, "int8", to_float_i8, to_double_i8},
    {'b', 1, "bool", to_float_b1, to_double_b1},      {'u', 2, "uint16", to_float_u16, to_double_u16},
    {'i', 2, "int16", to_float_i16, to_double_i16},   {'u', 4, "uint32", to_float_u32, to_double_u32},
    {'i', 4, "int32", to_float_i32, to_double_i32},   {'u', 8, "uint64", to_float_u64, to_double_u64},
    {'i', 8, "int64", to_float_i64, to_double_i64},   {'f', 2, "float16", to_float_f16, to_double_f16},
    {'f', 4, "float32", to_float_f32, to_double_f32}, {'f', 8, "float64", to_float_f64, to_double_f64},
};

static const npy_type *npy_type_find(char kind, int size)
{
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (npy_types[i].kind == kind && npy_types[i].size == size) return &npy_types[i];
    return NULL;
}

static int host_is_big_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 0;
}

static void swap_bytes(unsigned char *buf, int64_t n, int size)
{
    for (int64_t i = 0; i < n; i++, buf += size)
        for (int a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = buf[a];
            buf[a] = buf[b];
            buf[b] = t;
        }
}

/* --- one array: where its bytes are and what they hold ---------------- */

typedef struct npy_array {
    char *name;               /* owned */
    int fd;                   /* -1 for memory */
    unsigned char *mem;       /* owned copy (memory variant) */
    uint64_t file_size;
    const npy_type *type;
    int swap;                 /* byte order differs from the host's */
    int rank;
    int64_t dims[NPY_MAX_RANK];
    uint64_t shape_at;        /* file offset of the shape value (for messages) */
    uint64_t data_offset, data_bytes;
    int64_t row_elems;        /* elements per sample */
} npy_array;

/* Up to n bytes at `off`; *got < n only at the end of the file. */
static ct_status npy_read_at(const npy_array *a, uint64_t off, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (a->fd < 0) {
        if (off < a->file_size) *got = a->file_size - off < n ? (size_t)(a->file_size - off) : n;
        if (*got) memcpy(buf, a->mem + off, *got);
        return CT_OK;
    }
    while (*got < n) {
        ssize_t k = pread(a->fd, (unsigned char *)buf + *got, n - *got, (off_t)(off + *got));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0)
            return CT_FAIL(CT_ERR_IO, "%s: offset %llu: read failed: %s", a->name,
                           (unsigned long long)(off + *got), strerror(errno));
        if (k == 0) break;
        *got += (size_t)k;
    }
    return CT_OK;
}

/* Converts n elements starting at element `first` (of the data) to float
 * (or double when dd is not NULL). */
static ct_status npy_convert(const npy_array *a, uint64_t first, int64_t n, float *df, double *dd)
{
    unsigned char buf[NPY_CHUNK];
    const int64_t per = NPY_CHUNK / a->type->size;
    uint64_t off = a->data_offset + first * (uint64_t)a->type->size;
    while (n > 0) {
        int64_t k = n < per ? n : per;
        size_t want = (size_t)k * (size_t)a->type->size, got;
        CT_TRY(npy_read_at(a, off, buf, want, &got));
        if (got < want) /* the file shrank after open */
            return CT_FAIL(CT_ERR_IO, "%s: offset %llu: file ends early (was it truncated after opening?)",
                           a->name, (unsigned long long)(off + got));
        if (a->swap) swap_bytes(buf, k, a->type->size);
        if (dd) {
            a->type->to_double(buf, k, dd);
            dd += k;
        } else {
            a->type->to_float(buf, k, df);
            df += k;
        }
        off += want;
        n -= k;
    }
    return CT_OK;
}

/* --- the header ------------------------------------------------------- */

/* A cursor over the header text; offsets in messages are file offsets. */
typedef struct npy_parser {
    const npy_array *a;
    const char *s;
    size_t n, pos;
    uint64_t base; /* file offset of s[0] */
} npy_parser;

static unsigned long long at(const npy_parser *p) { return (unsigned long long)(p->base + p->pos); }

static void describe_char(const npy_parser *p, char *buf, size_t n)
{
    if (p->pos >= p->n)
        snprintf(buf, n, "the end of the header");
    else if (p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7f)
        snprintf(buf, n, "'%c'", p->s[p->pos]);
    else
        snprintf(buf, n, "byte 0x%02x", (unsigned char)p->s[p->pos]);
}

static ct_status expected(const npy_parser *p, const char *what)
{
    char found[32];
    describe_char(p, found, sizeof found);
    return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: bad .npy header: expected %s, found %s", p->a->name, at(p),
                   what, found);
}

static void skip_ws(npy_parser *p)
{
    while (p->pos < p->n && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos]) p->pos++;
}

static int peek(const npy_parser *p) { return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1; }

static ct_status expect_char(npy_parser *p, char c, const char *what)
{
    skip_ws(p);
    if (peek(p) != (unsigned char)c) return expected(p, what);
    p->pos++;
    return CT_OK;
}

/* A quoted string without escapes into buf. */
static ct_status parse_string(npy_parser *p, char *buf, size_t cap, const char *what)
{
    skip_ws(p);
    int q = peek(p);
    if (q != '\'' && q != '"') return expected(p, what);
    size_t start = ++p->pos, k = 0;
    while (p->pos < p->n && p->s[p->pos] != q) {
        if (p->s[p->pos] == '\\' || p->s[p->pos] == '\n')
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: bad .npy header: unsupported character in a string",
                           p->a->name, at(p));
        if (k + 1 < cap) buf[k++] = p->s[p->pos];
        p->pos++;
    }
    if (p->pos >= p->n) {
        p->pos = start - 1;
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: bad .npy header: unterminated string", p->a->name, at(p));
    }
    if (p->pos - start >= cap) {
        p->pos = start;
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: bad .npy header: string too long for %s", p->a->name,
                       at(p), what);
    }
    buf[k] = 0;
    p->pos++;
    return CT_OK;
}

static ct_status parse_descr(npy_parser *p, npy_array *a)
{
    char d[16];
    skip_ws(p);
    if (peek(p) == '[')
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: structured dtypes (a list 'descr') are not supported",
                       a->name, at(p));
    size_t start = p->pos;
    CT_TRY(parse_string(p, d, sizeof d, "a dtype string such as '<f4'"));
    size_t end = p->pos;
    p->pos = start;
    char order = d[0], kind = d[0] ? d[1] : 0;
    int size = kind && d[2] >= '1' && d[2] <= '9' && !d[3] ? d[2] - '0' : 0;
    a->type = npy_type_find(kind, size);
    if (!a->type || !strchr("<>|", order) || !order)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %llu: unsupported dtype '%s' (expected |u1 |i1 |b1, or <u2 <i2 <u4 <i4 <u8 "
                       "<i8 <f2 <f4 <f8 or the same with '>')",
                       a->name, at(p), d);
    if ((order == '|') != (size == 1))
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: dtype '%s': %s", a->name, at(p), d,
                       size == 1 ? "a one-byte type takes '|' (no byte order)"
                                 : "a multi-byte type needs a byte order, '<' or '>'");
    a->swap = size > 1 && (order == '>') != host_is_big_endian();
    p->pos = end;
    return CT_OK;
}

static ct_status parse_bool(npy_parser *p, int *v)
{
    skip_ws(p);
    if (p->n - p->pos >= 4 && !memcmp(p->s + p->pos, "True", 4)) {
        *v = 1;
        p->pos += 4;
    } else if (p->n - p->pos >= 5 && !memcmp(p->s + p->pos, "False", 5)) {
        *v = 0;
        p->pos += 5;
    } else {
        return expected(p, "True or False");
    }
    return CT_OK;
}

/* A non-negative decimal literal as Python writes it (no leading zeros). */
static ct_status parse_int(npy_parser *p, int64_t *v)
{
    size_t start = p->pos;
    uint64_t x = 0;
    if (peek(p) < '0' || peek(p) > '9') return expected(p, "a dimension (a non-negative integer)");
    while (peek(p) >= '0' && peek(p) <= '9') {
        x = x * 10 + (uint64_t)(p->s[p->pos++] - '0');
        if (x > NPY_MAX_BYTES) {
            p->pos = start;
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: dimension too large", p->a->name, at(p));
        }
    }
    if (p->pos - start > 1 && p->s[start] == '0') {
        p->pos = start;
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: bad .npy header: a number with a leading zero",
                       p->a->name, at(p));
    }
    *v = (int64_t)x;
    return CT_OK;
}

/* A tuple of ints: (), (3,), (3, 4), (3, 4,). */
static ct_status parse_shape(npy_parser *p, npy_array *a)
{
    CT_TRY(expect_char(p, '(', "a shape tuple such as (60000, 28, 28)"));
    a->shape_at = p->base + p->pos - 1;
    a->rank = 0;
    int commas = 0;
    for (;;) {
        skip_ws(p);
        if (peek(p) == ')') break;
        if (a->rank == NPY_MAX_RANK)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: more than %d dimensions", a->name, at(p), NPY_MAX_RANK);
        CT_TRY(parse_int(p, &a->dims[a->rank]));
        a->rank++;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
            commas++;
        } else if (peek(p) != ')') {
            return expected(p, "',' or ')' in the shape");
        }
    }
    if (a->rank == 1 && commas == 0) /* (3) is the int 3 in Python, not a tuple */
        return expected(p, "',' (a 1-tuple is written (n,))");
    p->pos++;
    return CT_OK;
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

static ct_status parse_entry(npy_parser *p, npy_array *a, unsigned *seen, int *fortran)
{
    static const char *const keys[] = {"descr", "fortran_order", "shape"};
    char key[32];
    size_t key_at = (skip_ws(p), p->pos);
    CT_TRY(parse_string(p, key, sizeof key, "a key ('descr', 'fortran_order' or 'shape')"));
    unsigned k = 0;
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(key, keys[i])) k = 1u << i;
    p->pos = key_at;
    if (!k) return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: unknown .npy header key '%s'", a->name, at(p), key);
    if (*seen & k) return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: key '%s' appears twice", a->name, at(p), key);
    *seen |= k;
    CT_TRY(parse_string(p, key, sizeof key, "a key"));
    CT_TRY(expect_char(p, ':', "':' after the key"));
    if (k == KEY_DESCR) return parse_descr(p, a);
    if (k == KEY_SHAPE) return parse_shape(p, a);
    skip_ws(p);
    size_t value_at = p->pos;
    CT_TRY(parse_bool(p, fortran));
    if (*fortran) {
        p->pos = value_at;
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %llu: fortran_order is True: column-major arrays are not supported "
                       "(save with np.save(path, np.ascontiguousarray(a)))",
                       a->name, at(p));
    }
    return CT_OK;
}

static ct_status parse_dict(npy_parser *p, npy_array *a)
{
    unsigned seen = 0;
    int fortran = 0;
    CT_TRY(expect_char(p, '{', "'{' (a dict literal)"));
    for (;;) {
        skip_ws(p);
        if (peek(p) == '}') break;
        CT_TRY(parse_entry(p, a, &seen, &fortran));
        skip_ws(p);
        if (peek(p) == ',')
            p->pos++;
        else if (peek(p) != '}')
            return expected(p, "',' or '}'");
    }
    p->pos++;
    if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: the .npy header lacks the key '%s'", a->name, at(p),
                       !(seen & KEY_DESCR) ? "descr" : !(seen & KEY_SHAPE) ? "shape" : "fortran_order");
    skip_ws(p);
    if (p->pos < p->n) return expected(p, "the end of the header after '}'");
    return CT_OK;
}

/* Magic, version and header length; the header text into *text. */
static ct_status read_preamble(npy_array *a, char **text, uint32_t *hlen)
{
    unsigned char m[12];
    size_t got;
    CT_TRY(npy_read_at(a, 0, m, sizeof m, &got));
    if (got < 10 || memcmp(m, "\x93NUMPY", 6) != 0) {
        if (got >= 6 && memcmp(m, "\x93NUMPY", 6) == 0)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: file ends inside the .npy preamble", a->name, got);
        return CT_FAIL(CT_ERR_DATA, "%s: offset 0: not a .npy file (expected the magic \\x93NUMPY)%s", a->name,
                       got < 6 ? ", the file is too short" : "");
    }
    if (m[6] < 1 || m[6] > 3 || m[7] != 0)
        return CT_FAIL(CT_ERR_DATA, "%s: offset 6: .npy format version %d.%d (expected 1.0, 2.0 or 3.0)", a->name,
                       m[6], m[7]);
    unsigned lenbytes = m[6] == 1 ? 2 : 4;
    if (got < 8 + lenbytes)
        return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: file ends inside the .npy preamble", a->name, got);
    *hlen = m[8] | (uint32_t)m[9] << 8;
    if (lenbytes == 4) *hlen |= (uint32_t)m[10] << 16 | (uint32_t)m[11] << 24;
    if (*hlen > NPY_MAX_HEADER)
        return CT_FAIL(CT_ERR_DATA, "%s: offset 8: header length %u is more than the %u bytes allowed", a->name,
                       *hlen, NPY_MAX_HEADER);
    a->data_offset = 8 + lenbytes + (uint64_t)*hlen;
    *text = malloc(*hlen + 1u);
    if (!*text) return CT_FAIL(CT_ERR_NOMEM, "%s: header of %u bytes", a->name, *hlen);
    CT_TRY(npy_read_at(a, 8 + lenbytes, *text, *hlen, &got));
    if (got < *hlen)
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: file ends inside the header (expected %u header bytes)",
                       a->name, (unsigned long long)(8 + lenbytes + got), *hlen);
    return CT_OK;
}

/* Shape checks, and the data size against the file size. */
static ct_status check_size(npy_array *a)
{
    if (a->rank == 0)
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: shape () is a scalar; expected an array with samples "
                       "along the first axis", a->name, (unsigned long long)a->shape_at);
    uint64_t count = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] == 0)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: dimension %d is 0 (%s)", a->name,
                           (unsigned long long)a->shape_at, i, i ? "empty samples" : "no samples");
        if (count > NPY_MAX_BYTES / (uint64_t)a->dims[i] / (uint64_t)a->type->size)
            return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: the shape claims more than 2^62 bytes", a->name,
                           (unsigned long long)a->shape_at);
        count *= (uint64_t)a->dims[i];
    }
    a->data_bytes = count * (uint64_t)a->type->size;
    a->row_elems = (int64_t)(count / (uint64_t)a->dims[0]);
    uint64_t end = a->data_offset + a->data_bytes;
    if (a->file_size < end)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %llu: file too short: the data ends at offset %llu, expected it to end at "
                       "offset %llu (%llu %s values from offset %llu)",
                       a->name, (unsigned long long)a->file_size, (unsigned long long)a->file_size,
                       (unsigned long long)end, (unsigned long long)count, a->type->name,
                       (unsigned long long)a->data_offset);
    if (a->file_size > end)
        return CT_FAIL(CT_ERR_DATA,
                       "%s: offset %llu: size mismatch: the header accounts for %llu bytes but the file has "
                       "%llu more",
                       a->name, (unsigned long long)end, (unsigned long long)end,
                       (unsigned long long)(a->file_size - end));
    return CT_OK;
}

static ct_status npy_parse(npy_array *a)
{
    char *text = NULL;
    uint32_t hlen = 0;
    ct_status st = read_preamble(a, &text, &hlen);
    if (st == CT_OK) {
        npy_parser p = {a, text, hlen, 0, a->data_offset - hlen};
        st = parse_dict(&p, a);
    }
    free(text);
    return st == CT_OK ? check_size(a) : st;
}

/* --- labels ----------------------------------------------------------- */

static int is_int_type(const npy_type *t) { return t->kind != 'f'; }

/* Class labels must be whole, >= 0 and < 2^31; returns the largest. */
static ct_status scan_labels(const npy_array *y, double *max_label)
{
    double v[NPY_CHUNK / 8];
    const int64_t per = NPY_CHUNK / 8;
    *max_label = 0;
    for (int64_t i0 = 0; i0 < y->dims[0]; i0 += per) {
        int64_t k = y->dims[0] - i0 < per ? y->dims[0] - i0 : per;
        CT_TRY(npy_convert(y, (uint64_t)i0, k, NULL, v));
        for (int64_t i = 0; i < k; i++) {
            unsigned long long off = (unsigned long long)(y->data_offset + (uint64_t)(i0 + i) * (uint64_t)y->type->size);
            if (v[i] < 0)
                return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: label %.0f of sample %lld is negative", y->name, off,
                               v[i], (long long)(i0 + i));
            if (v[i] > NPY_MAX_LABEL)
                return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: label %.0f of sample %lld is too large (expected "
                               "a class index below 2^31)", y->name, off, v[i], (long long)(i0 + i));
            if (v[i] > *max_label) *max_label = v[i];
        }
    }
    return CT_OK;
}

/* --- the stage -------------------------------------------------------- */

typedef struct npy_stage {
    ct_mem_source src; /* base, cursor */
    npy_array x, y;
    int has_y;
} npy_stage;

static ct_status npy_get(ct_stage *st, int64_t i, ct_sample *out)
{
    npy_stage *s = (npy_stage *)st;
    CT_TRY(npy_convert(&s->x, (uint64_t)(i * s->x.row_elems), s->x.row_elems, out->x, NULL));
    if (s->has_y) CT_TRY(npy_convert(&s->y, (uint64_t)(i * s->y.row_elems), s->y.row_elems, out->y, NULL));
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void array_free(npy_array *a)
{
    if (a->fd >= 0) close(a->fd);
    free(a->mem);
    free(a->name);
}

static void npy_close(ct_stage *st)
{
    npy_stage *s = (npy_stage *)st;
    if (!s) return;
    array_free(&s->x);
    array_free(&s->y);
    free(s);
}

static const ct_stage_vtable npy_vtable = {"npy", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell,
                                           ct_mem_source_seek, npy_close, npy_get};

static ct_status array_open_file(npy_array *a, const char *path)
{
    struct stat sb;
    a->name = strdup(path);
    if (!a->name) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", path);
    a->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (a->fd < 0) return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path, strerror(errno));
    if (fstat(a->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return CT_FAIL(CT_ERR_DATA, "%s: not a regular file", path);
    a->file_size = (uint64_t)sb.st_size;
    return CT_OK;
}

static ct_status array_open_memory(npy_array *a, const unsigned char *d, size_t n, const char *name)
{
    a->name = strdup(name);
    a->mem = malloc(n ? n : 1);
    if (!a->name || !a->mem) return CT_FAIL(CT_ERR_NOMEM, "%s: %zu bytes", name, n);
    if (n) memcpy(a->mem, d, n);
    a->file_size = n;
    return CT_OK;
}

/* Labels: one row per sample of x; class indices when 1-D integers. */
static ct_status check_labels(npy_stage *s)
{
    npy_array *y = &s->y;
    ct_stage *b = &s->src.base;
    if (y->dims[0] != s->x.dims[0])
        return CT_FAIL(CT_ERR_DATA, "%s: offset %llu: count mismatch: %lld labels, but %s holds %lld samples",
                       y->name, (unsigned long long)y->shape_at, (long long)y->dims[0], s->x.name,
                       (long long)s->x.dims[0]);
    if (y->rank == 1) {
        b->y_shape = ct_shape1(1);
        if (is_int_type(y->type)) {
            double max_label;
            CT_TRY(scan_labels(y, &max_label));
            b->num_classes = (int64_t)max_label + 1;
        }
    } else {
        b->y_shape = ct_shape_make(y->rank - 1, y->dims + 1);
    }
    return CT_OK;
}

static ct_status npy_finish(npy_stage *s, ct_stage **out)
{
    ct_stage *b = &s->src.base;
    CT_TRY(npy_parse(&s->x));
    if (s->has_y) CT_TRY(npy_parse(&s->y));
    b->length = s->x.dims[0];
    b->x_shape = s->x.rank == 1 ? ct_shape1(1) : ct_shape_make(s->x.rank - 1, s->x.dims + 1);
    if (s->has_y) CT_TRY(check_labels(s));
    *out = b;
    return CT_OK;
}

static npy_stage *npy_new(int has_y)
{
    npy_stage *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->src.base.vt = &npy_vtable;
    s->x.fd = s->y.fd = -1;
    s->has_y = has_y;
    return s;
}

ct_status ct_npy_open(const char *x_path, const char *y_path, ct_stage **out)
{
    *out = NULL;
    npy_stage *s = npy_new(y_path != NULL);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", x_path);
    ct_status st = array_open_file(&s->x, x_path);
    if (st == CT_OK && y_path) st = array_open_file(&s->y, y_path);
    if (st == CT_OK) st = npy_finish(s, out);
    if (st != CT_OK) npy_close(&s->src.base);
    return st;
}

ct_status ct_npy_open_memory(const unsigned char *x, size_t xlen, const unsigned char *y, size_t ylen,
                             const char *name, ct_stage **out)
{
    char lab_name[512];
    *out = NULL;
    if (!name) name = "npy";
    snprintf(lab_name, sizeof lab_name, "%s (labels)", name);
    npy_stage *s = npy_new(y != NULL);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
    ct_status st = array_open_memory(&s->x, x, xlen, name);
    if (st == CT_OK && y) st = array_open_memory(&s->y, y, ylen, lab_name);
    if (st == CT_OK) st = npy_finish(s, out);
    if (st != CT_OK) npy_close(&s->src.base);
    return st;
}
