/* Fuzz target: CIFAR-10/100 records from memory; the first byte picks
 * the variant. Every sample of an accepted input is drained. */
#include <stdint.h>
#include <stdlib.h>

#include "sources.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const ct_cifar_kind kinds[] = {CT_CIFAR10, CT_CIFAR100_FINE, CT_CIFAR100_COARSE};
    ct_stage *s = NULL;
    if (ct_cifar_open_memory(data + 1, size - 1, "fuzz", kinds[data[0] % 3], &s) != CT_OK) return 0;
    float x[3072], y;
    ct_sample smp = {x, &y, 0, 0};
    int eof = 0;
    while (ct_stage_next(s, &smp, &eof) == CT_OK && !eof) {
    }
    ct_stage_close(s);
    return 0;
}
