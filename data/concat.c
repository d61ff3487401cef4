/* Several sources side by side: the data of a model with several inputs
 * and targets (several .npy files, several HDF5 data sets). Sample i is
 * the concatenation of sample i of each x part (in the model's input
 * order) and, as targets, of each y part (in output order): one flat row
 * per sample, so shard, shuffle, cache, prefetch and resume work as for
 * one source. Parts are opened without labels; a y part's values are
 * its samples. */
#include <stdlib.h>
#include <string.h>

#include "memsource.h"
#include "sources.h"

typedef struct concat_stage {
    ct_mem_source src;
    int n_parts, n_x;          /* parts [0, n_x) fill x, the rest fill y */
    ct_stage **parts;
    int64_t *offset;           /* first value of each part in its row */
} concat_stage;

static ct_status concat_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    concat_stage *c = (concat_stage *)st;
    for (int k = 0; k < c->n_parts; k++) {
        ct_sample s = {(k < c->n_x ? out->x : out->y) + c->offset[k], NULL, 0, 1};
        CT_TRY(ct_stage_get(c->parts[k], pos, &s));
    }
    out->index = pos;
    out->rows = 1;
    return CT_OK;
}

static void concat_close(ct_stage *st)
{
    concat_stage *c = (concat_stage *)st;
    for (int k = 0; k < c->n_parts; k++) ct_stage_close(c->parts[k]);
    free(c->parts);
    free(c->offset);
    free(c->src.name);
    free(c);
}

static const ct_stage_vtable concat_vtable = {
    .name = "concat", .next = ct_mem_source_next, .reset = ct_mem_source_reset, .tell = ct_mem_source_tell,
    .seek = ct_mem_source_seek, .close = concat_close, .get = concat_get,
};

ct_status ct_concat_open(ct_stage **parts, int n_x, int n_y, const char *name, ct_stage **out)
{
    *out = NULL;
    int n = n_x + n_y;
    concat_stage *c = calloc(1, sizeof *c);
    ct_status s = CT_OK;
    if (!c || !(c->offset = calloc((size_t)n, sizeof *c->offset)) || !(c->parts = calloc((size_t)n, sizeof *c->parts))) {
        s = CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    c->src.base.vt = &concat_vtable;
    c->src.name = strdup(name ? name : "");
    int64_t xs = 0, ys = 0;
    for (int k = 0; k < n; k++) {
        ct_stage *p = parts[k];
        c->parts[c->n_parts++] = p;
        parts[k] = NULL; /* owned now */
        if (!ct_stage_has_get(p) || p->y_shape.rank != 0) {
            s = CT_FAIL(CT_ERR_DATA, "%s: part %d (%s) must be a source with random access and no labels", name, k + 1,
                        p->vt->name);
            goto fail;
        }
        if (k > 0 && p->length != c->parts[0]->length) {
            s = CT_FAIL(CT_ERR_DATA, "%s: part %d has %lld samples, part 1 has %lld; every input and target needs "
                        "one row per sample", name, k + 1, (long long)p->length, (long long)c->parts[0]->length);
            goto fail;
        }
        int64_t size = ct_shape_numel(&p->x_shape);
        c->offset[k] = k < n_x ? xs : ys;
        if (k < n_x) xs += size;
        else ys += size;
    }
    c->n_x = n_x;
    c->src.base.length = n ? c->parts[0]->length : 0;
    /* one part keeps its shape (an image input); several are flat rows */
    c->src.base.x_shape = n_x == 1 ? c->parts[0]->x_shape : ct_shape1(xs);
    c->src.base.y_shape = n_y ? ct_shape1(ys) : (ct_shape){0};
    *out = &c->src.base;
    return CT_OK;
fail:
    for (int k = 0; k < n; k++) ct_stage_close(parts[k]);
    if (c) concat_close(&c->src.base);
    return s;
}
