/* CIFAR-10 and CIFAR-100 binary batches as a source stage. The files hold
 * 8-bit pixels; they stay bytes in memory (150 MB for CIFAR-10's training
 * set) and become floats one sample at a time in next(). */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsource.h"
#include "sources.h"

#define CIFAR_PIXELS 3072

typedef struct cifar {
    ct_mem_source src; /* base, cursor */
    unsigned char *pixels; /* n x 3072, planar R, G, B per record */
    unsigned char *labels; /* n */
} cifar;

static ct_status cifar_get(ct_stage *st, int64_t i, ct_sample *out)
{
    cifar *c = (cifar *)st;
    const unsigned char *p = c->pixels + i * CIFAR_PIXELS;
    /* planes (c, y, x) -> HWC */
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int ch = 0; ch < 3; ch++) out->x[(y * 32 + x) * 3 + ch] = p[ch * 1024 + y * 32 + x];
    out->y[0] = c->labels[i];
    out->index = i;
    out->rows = 1;
    return CT_OK;
}

static void cifar_close(ct_stage *st)
{
    cifar *c = (cifar *)st;
    free(c->pixels);
    free(c->labels);
    free(c);
}

static const ct_stage_vtable cifar_vtable = {"cifar", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell, ct_mem_source_seek, cifar_close, cifar_get};

static ct_status make(ct_cifar_kind kind, cifar **out)
{
    cifar *c = calloc(1, sizeof *c);
    if (!c) return CT_FAIL(CT_ERR_NOMEM, "cifar source");
    c->src.base.vt = &cifar_vtable;
    c->src.base.x_shape = ct_shape3(32, 32, 3);
    c->src.base.y_shape = ct_shape1(1);
    c->src.base.num_classes = kind;
    *out = c;
    return CT_OK;
}

/* Append the records of one file's bytes; offsets in messages are
 * offsets in that file. */
static ct_status append(cifar *c, const unsigned char *d, size_t len, const char *name, ct_cifar_kind kind)
{
    size_t rec = kind == CT_CIFAR10 ? 3073 : 3074;
    const char *what = kind == CT_CIFAR10 ? "CIFAR-10" : "CIFAR-100";
    if (len == 0) return CT_FAIL(CT_ERR_DATA, "%s: empty file (expected %s records of %zu bytes)", name, what, rec);
    if (len % rec)
        return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: the file ends inside a record (%zu bytes is not a whole number of "
                       "%zu-byte %s records)", name, len - len % rec, len, rec, what);
    int64_t n = (int64_t)(len / rec);
    unsigned char *px = realloc(c->pixels, (size_t)(c->src.base.length + n) * CIFAR_PIXELS);
    if (!px) return CT_FAIL(CT_ERR_NOMEM, "%s: %lld records", name, (long long)n);
    c->pixels = px;
    unsigned char *lb = realloc(c->labels, (size_t)(c->src.base.length + n));
    if (!lb) return CT_FAIL(CT_ERR_NOMEM, "%s: %lld records", name, (long long)n);
    c->labels = lb;
    int label_at = kind == CT_CIFAR100_FINE ? 1 : 0;
    int limit = kind == CT_CIFAR100_FINE ? 100 : (kind == CT_CIFAR100_COARSE ? 20 : 10);
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *r = d + (size_t)i * rec;
        if (r[label_at] >= limit || (kind != CT_CIFAR10 && r[0] >= 20))
            return CT_FAIL(CT_ERR_DATA, "%s: offset %zu: label %d out of range for %s (expected 0..%d); is this a %s file?",
                           name, (size_t)i * rec + (size_t)(r[label_at] >= limit ? label_at : 0),
                           r[label_at] >= limit ? r[label_at] : r[0], what, limit - 1, what);
        c->labels[c->src.base.length + i] = r[label_at];
        memcpy(c->pixels + (size_t)(c->src.base.length + i) * CIFAR_PIXELS, r + rec - CIFAR_PIXELS, CIFAR_PIXELS);
    }
    c->src.base.length += n;
    return CT_OK;
}

static ct_status read_whole(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path, strerror(errno));
    ct_status s = CT_OK;
    if (fseek(f, 0, SEEK_END) != 0) s = CT_FAIL(CT_ERR_DATA, "%s: not a regular file", path);
    long n = s == CT_OK ? ftell(f) : -1;
    if (s == CT_OK && n < 0) s = CT_FAIL(CT_ERR_DATA, "%s: not a regular file", path);
    *data = s == CT_OK ? malloc((size_t)n + 1) : NULL;
    if (s == CT_OK && !*data) s = CT_FAIL(CT_ERR_NOMEM, "%s: %ld bytes", path, n);
    if (s == CT_OK) {
        rewind(f);
        if (fread(*data, 1, (size_t)n, f) != (size_t)n) s = CT_FAIL(CT_ERR_IO, "%s: read failed", path);
        *len = (size_t)n;
    }
    fclose(f);
    if (s != CT_OK) {
        free(*data);
        *data = NULL;
    }
    return s;
}

ct_status ct_cifar_open(const char *pattern, ct_cifar_kind kind, ct_stage **out)
{
    glob_t g;
    *out = NULL;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0)
        return CT_FAIL(CT_ERR_DATA, "%s: no such file%s", pattern, strpbrk(pattern, "*?[") ? " matches the pattern" : "");
    cifar *c = NULL;
    ct_status s = make(kind, &c);
    for (size_t i = 0; s == CT_OK && i < g.gl_pathc; i++) {
        unsigned char *d = NULL;
        size_t len = 0;
        s = read_whole(g.gl_pathv[i], &d, &len);
        if (s == CT_OK) s = append(c, d, len, g.gl_pathv[i], kind);
        free(d);
    }
    globfree(&g);
    if (s != CT_OK) {
        if (c) cifar_close(&c->src.base);
        return s;
    }
    *out = &c->src.base;
    return CT_OK;
}

ct_status ct_cifar_open_memory(const unsigned char *data, size_t len, const char *name, ct_cifar_kind kind,
                               ct_stage **out)
{
    cifar *c;
    *out = NULL;
    CT_TRY(make(kind, &c));
    ct_status s = append(c, data, len, name, kind);
    if (s != CT_OK) {
        cifar_close(&c->src.base);
        return s;
    }
    *out = &c->src.base;
    return CT_OK;
}
