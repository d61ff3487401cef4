/* What the sources that hold every sample in memory (IDX, CSV, CIFAR)
 * share: a cursor over [0, length) and the reset/tell/seek that move it.
 * A source struct starts with a ct_mem_source and points its vtable's
 * reset/tell/seek at these functions, and its next at ct_mem_source_next
 * when it has get. */
#ifndef CT_MEMSOURCE_H
#define CT_MEMSOURCE_H

#include "stage.h"

typedef struct ct_mem_source {
    ct_stage base;
    char *name;       /* for messages; owned by the source (may be NULL) */
    int64_t cursor;   /* next sample */
} ct_mem_source;

ct_status ct_mem_source_reset(ct_stage *st, uint64_t epoch);
ct_status ct_mem_source_tell(const ct_stage *st, uint64_t *cursor);
/* CT_ERR_DATA past the end: a cursor from a checkpoint of other data. */
ct_status ct_mem_source_seek(ct_stage *st, uint64_t cursor);

/* next() for sources with random access: get(cursor++). */
ct_status ct_mem_source_next(ct_stage *st, ct_sample *out, int *eof);

/* Next sample index into *i, or *eof = 1 at the end. */
static inline int ct_mem_source_take(ct_stage *st, int64_t *i, int *eof)
{
    ct_mem_source *m = (ct_mem_source *)st;
    *eof = m->cursor >= st->length;
    if (!*eof) *i = m->cursor++;
    return *eof;
}

#endif
