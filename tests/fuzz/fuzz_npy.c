/* Fuzz target for the .npy reader (ct_npy_open_memory).
 *
 * The input is one .npy file. It is opened alone, then as both samples and
 * labels (the counts then agree, so the label paths run: the class-index
 * scan for 1-D integer arrays, rows otherwise). Every sample is read back
 * with next() and get(), and the cursor is moved around, so a header that
 * lies about its size shows up as an out-of-bounds read under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"

static void drain(ct_stage *s)
{
    int64_t nx = ct_shape_numel(&s->x_shape), ny = ct_shape_numel(&s->y_shape);
    float *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    float *x2 = malloc((size_t)nx * sizeof *x2), *y2 = malloc((size_t)ny * sizeof *y2);
    ct_sample smp = {x, y, -1, 0}, smp2 = {x2, y2, -1, 0};
    int eof = 0;
    uint64_t cursor;
    if (!x || !y || !x2 || !y2) abort();
    while (ct_stage_next(s, &smp, &eof) == CT_OK && !eof) {
        /* get() must agree with next() (NaN-safe: compare bytes) */
        if (ct_stage_get(s, smp.index, &smp2) != CT_OK || memcmp(x, x2, (size_t)nx * sizeof *x) != 0) abort();
    }
    if (ct_stage_tell(s, &cursor) != CT_OK || cursor != (uint64_t)s->length) abort();
    if (ct_stage_seek(s, cursor + 1) == CT_OK) abort();
    if (ct_stage_seek(s, cursor / 2) == CT_OK) ct_stage_next(s, &smp, &eof);
    ct_stage_reset(s, 1);
    free(x), free(y), free(x2), free(y2);
}

static void try_open(const uint8_t *data, size_t size, int labels)
{
    ct_stage *s = NULL;
    ct_status st = ct_npy_open_memory(data, size, labels ? data : NULL, size, "fuzz.npy", &s);
    if (st == CT_OK) {
        if (!s || s->length <= 0) abort();
        if (labels && s->y_shape.rank == 0) abort();
        drain(s);
    } else if (s) {
        abort(); /* a failed open must not hand out a stage */
    }
    ct_stage_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_open(data, size, 0);
    try_open(data, size, 1);
    return 0;
}
