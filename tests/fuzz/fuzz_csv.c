/* Fuzz target for the CSV reader (ct_csv_open_memory).
 *
 * Byte 0 chooses the options (bits 0-1 delimiter, 2 header, 3-4 label
 * column, 5-6 skip_rows) so the fuzzer explores all of them; the rest is
 * the text, not NUL-terminated, so reading past its end shows up under
 * ASan. Every row is read back and the cursor is moved around. */
#include <stdint.h>
#include <stdlib.h>

#include "sources.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = {',', ';', '\t', ' '};
    static const char *const labels[] = {NULL, "0", "1", "label"};
    if (size < 1) return 0;
    ct_csv_options opt = {.delimiter = delims[data[0] & 3],
                          .header = (data[0] >> 2) & 1,
                          .label_column = labels[(data[0] >> 3) & 3],
                          .skip_rows = (data[0] >> 5) & 3};
    ct_stage *s = NULL;
    if (ct_csv_open_memory((const char *)data + 1, size - 1, "fuzz.csv", &opt, &s) != CT_OK) {
        if (s) abort();
        return 0;
    }
    int64_t nx = ct_shape_numel(&s->x_shape);
    float *x = malloc((size_t)nx * sizeof *x), y[1];
    ct_sample smp = {x, y, -1, 0};
    int eof = 0, rows = 0;
    uint64_t cursor;
    while (x && ct_stage_next(s, &smp, &eof) == CT_OK && !eof) rows++;
    if (x && rows != s->length) abort();
    if (ct_stage_tell(s, &cursor) != CT_OK || ct_stage_seek(s, cursor + 1) == CT_OK) abort();
    if (x && ct_stage_seek(s, cursor / 2) == CT_OK) ct_stage_next(s, &smp, &eof);
    ct_stage_reset(s, 1);
    free(x);
    ct_stage_close(s);
    return 0;
}
