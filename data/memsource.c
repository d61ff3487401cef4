/* The cursor of in-memory sources. */
#include "memsource.h"

ct_status ct_mem_source_reset(ct_stage *st, uint64_t epoch)
{
    ((ct_mem_source *)st)->cursor = 0;
    return CT_OK;
}

ct_status ct_mem_source_tell(const ct_stage *st, uint64_t *cursor)
{
    *cursor = (uint64_t)((const ct_mem_source *)st)->cursor;
    return CT_OK;
}

ct_status ct_mem_source_seek(ct_stage *st, uint64_t cursor)
{
    ct_mem_source *m = (ct_mem_source *)st;
    if (cursor > (uint64_t)st->length)
        return CT_FAIL(CT_ERR_DATA, "%s %s: cannot seek to sample %llu of %lld", st->vt->name,
                       m->name ? m->name : "", (unsigned long long)cursor, (long long)st->length);
    m->cursor = (int64_t)cursor;
    return CT_OK;
}

ct_status ct_mem_source_next(ct_stage *st, ct_sample *out, int *eof)
{
    int64_t i;
    if (ct_mem_source_take(st, &i, eof)) return CT_OK;
    return st->vt->get(st, i, out);
}
