/* The pipeline-stage interface.
 *
 * A stage yields one sample at a time into buffers the caller owns. Stages
 * stack (source -> shard -> shuffle -> map -> batch -> prefetch); sources
 * are stages with nothing below them. Every stage can report and restore
 * its position (tell/seek) so a run resumes mid-epoch, and reset(epoch)
 * rewinds for a new epoch (stages that draw randomness key it by epoch).
 * Nothing here knows about models. */
#ifndef CT_STAGE_H
#define CT_STAGE_H

#include <stdint.h>

#include "../core/status.h"
#include "../core/tensor.h"

typedef struct ct_sample {
    float *x;      /* numel(x_shape) floats, written by next() */
    float *y;      /* numel(y_shape) floats, written by next() */
    int64_t index; /* position of the sample in its source (the key of its
                    * augmentation randomness); a batch's first sample */
    int64_t rows;  /* batch stages: samples written (x holds rows x the
                    * per-sample shape); 1 for sample stages */
} ct_sample;

typedef struct ct_stage ct_stage;

typedef struct ct_stage_vtable {
    const char *name;
    /* Write the next sample into *out; *eof = 1 (and nothing written) at
     * the end of the epoch. */
    ct_status (*next)(ct_stage *s, ct_sample *out, int *eof);
    ct_status (*reset)(ct_stage *s, uint64_t epoch);
    ct_status (*tell)(const ct_stage *s, uint64_t *cursor);
    ct_status (*seek)(ct_stage *s, uint64_t cursor);
    void (*close)(ct_stage *s);
    /* Random access, or NULL: write the sample at position `pos` of the
     * current epoch's stream (0 <= pos < length) without moving the
     * cursor. Must be safe to call from several threads at once (the map
     * stage's workers do); sources that wrap a library that is not
     * serialise inside. */
    ct_status (*get)(ct_stage *s, int64_t pos, ct_sample *out);
} ct_stage_vtable;

struct ct_stage {
    const ct_stage_vtable *vt;
    ct_shape x_shape;   /* per-sample input shape */
    ct_shape y_shape;   /* per-sample target shape ((1) for class labels) */
    int64_t length;     /* samples per epoch, -1 when unknown */
    int64_t num_classes;/* > 0 for class labels: labels lie in [0, num_classes) */
    /* Batch stages (0 for sample stages): the most rows one next() writes,
     * the global batch, and the samples of an epoch over all ranks. */
    int64_t batch_rows, global_batch, global_samples;
};

static inline ct_status ct_stage_next(ct_stage *s, ct_sample *out, int *eof) { return s->vt->next(s, out, eof); }
static inline ct_status ct_stage_reset(ct_stage *s, uint64_t epoch) { return s->vt->reset(s, epoch); }
static inline ct_status ct_stage_tell(const ct_stage *s, uint64_t *c) { return s->vt->tell(s, c); }
static inline ct_status ct_stage_seek(ct_stage *s, uint64_t c) { return s->vt->seek(s, c); }
static inline ct_status ct_stage_get(ct_stage *s, int64_t pos, ct_sample *out) { return s->vt->get(s, pos, out); }
static inline int ct_stage_has_get(const ct_stage *s) { return s->vt->get != NULL; }
static inline void ct_stage_close(ct_stage *s)
{
    if (s) s->vt->close(s);
}

#endif
