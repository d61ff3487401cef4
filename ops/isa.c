/* Run-time choice of the instruction set (see isa.h). */
#include "isa.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[CT_ISA_COUNT] = {"generic", "avx2", "avx512"};

const char *ct_isa_name(ct_isa isa) { return isa >= 0 && isa < CT_ISA_COUNT ? names[isa] : "?"; }

ct_isa ct_isa_parse(const char *name)
{
    for (int i = 0; name && i < CT_ISA_COUNT; i++)
        if (strcmp(name, names[i]) == 0) return (ct_isa)i;
    return CT_ISA_COUNT;
}

ct_isa ct_isa_cpu(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int cached = -1;
    if (cached < 0) {
        /* __builtin_cpu_supports also checks that the OS saves the
         * vector state (XGETBV) for these features. */
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) cached = CT_ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cached = CT_ISA_AVX2;
        else cached = CT_ISA_GENERIC;
    }
    return (ct_isa)cached;
#else
    return CT_ISA_GENERIC;
#endif
}

static int forced = -1; /* -1: none */

static ct_isa isa_default(void)
{
    static int cached = -1;
    if (cached < 0) {
        ct_isa best = ct_isa_cpu(), want = ct_isa_parse(getenv("CT_ISA"));
        cached = want < best ? want : best;
    }
    return (ct_isa)cached;
}

ct_isa ct_isa_active(void)
{
    if (forced >= 0) return (ct_isa)forced;
    return isa_default();
}

ct_isa ct_isa_force(ct_isa isa)
{
    ct_isa prev = ct_isa_active(), best = ct_isa_cpu();
    forced = isa >= CT_ISA_COUNT || isa < 0 ? -1 : (int)(isa < best ? isa : best);
    return prev;
}
