/* Fuzz target for the IDX reader (ct_idx_open_memory).
 *
 * Input layout: byte 0 chooses the labels. 0 means no labels and the rest
 * is the images file; otherwise the images file is the next 4 * byte0
 * bytes (clipped to the input) and whatever follows is the labels file.
 * Either part may be gzip. Every sample is read back with next(), and the
 * cursor is moved around, so a header that lies about its size shows up as
 * an out-of-bounds read under ASan. */
#include <stdint.h>
#include <stdlib.h>

#include "sources.h"

static void drain(ct_stage *s)
{
    int64_t nx = ct_shape_numel(&s->x_shape);
    float *x = malloc((size_t)nx * sizeof *x), y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof = 0;
    uint64_t cursor;
    while (x && ct_stage_next(s, &smp, &eof) == CT_OK && !eof) {
    }
    if (ct_stage_tell(s, &cursor) != CT_OK || cursor != (uint64_t)s->length) abort();
    if (ct_stage_seek(s, cursor + 1) == CT_OK) abort();
    if (x && ct_stage_seek(s, cursor / 2) == CT_OK) ct_stage_next(s, &smp, &eof);
    ct_stage_reset(s, 1);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned char *rest = data + 1;
    size_t n = size - 1, split = n;
    if (data[0]) split = (size_t)data[0] * 4 < n ? (size_t)data[0] * 4 : n;
    ct_stage *s = NULL;
    ct_status st = ct_idx_open_memory(rest, split, data[0] ? rest + split : NULL, n - split,
                                      "fuzz.idx", &s);
    if (st == CT_OK) {
        if (!s || s->length <= 0) abort();
        drain(s);
    } else if (s) {
        abort(); /* a failed open must not hand out a stage */
    }
    ct_stage_close(s);
    return 0;
}
