/* Fuzz target for the PNG and JPEG decoders of the image-folder source
 * (ct_image_info_memory, ct_image_decode_memory).
 *
 * The input is one PNG or JPEG file. Its header is read; images of up to
 * 2^20 pixels are decoded at their own size (RGB and grayscale) and
 * resized, larger ones are skipped (the decoders' time and memory grow
 * with the pixel count, not the input). A corrupt file must fail with a
 * status, never crash, leak or print. */
#include <stdint.h>
#include <stdlib.h>

#include "sources.h"

#define FUZZ_MAX_PIXELS (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int h = 0, w = 0, h2 = -1, w2 = -1;
    float small[7 * 5 * 3];
    if (ct_image_info_memory(data, size, "fuzz.img", &h, &w) != CT_OK) {
        /* a header that cannot be read cannot decode either */
        if (ct_image_decode_memory(data, size, "fuzz.img", 3, 7, 5, small, NULL, NULL) == CT_OK) abort();
        return 0;
    }
    if (h <= 0 || w <= 0) abort();
    if ((int64_t)h * w > FUZZ_MAX_PIXELS) return 0;
    float *out = malloc((size_t)h * (size_t)w * 3 * sizeof *out);
    if (!out) return 0;
    if (ct_image_decode_memory(data, size, "fuzz.img", 3, 0, 0, out, &h2, &w2) == CT_OK) {
        if (h2 != h || w2 != w) abort(); /* the header and the decoder agree on the size */
        for (int64_t i = 0; i < (int64_t)h * w * 3; i++)
            if (!(out[i] >= 0 && out[i] <= 255)) abort();
        if (ct_image_decode_memory(data, size, "fuzz.img", 1, 7, 5, small, NULL, NULL) != CT_OK) abort();
    }
    free(out);
    return 0;
}
