/* Inside the eager tensors and tapes (core/eager.c, eager_ops.c, tape.c):
 * the tensor struct, the buffer cache, and the recording interface the
 * operations use. Not installed; the public side is ctrain.h. */
#ifndef CT_EAGER_IMPL_H
#define CT_EAGER_IMPL_H

#include <stdint.h>

#include "status.h"

struct ct_eager {
    int refs;
    int owns;                 /* data came from the buffer cache (else the caller's, ct_eager_wrap) */
    int rank;
    int64_t dims[CT_EAGER_MAX_DIMS];
    int64_t numel;
    float *data;
    /* gradient pass bookkeeping (ct_tape_gradient) */
    uint64_t mark;            /* the pass that found it depends on a wrt tensor */
    float *grad;              /* dL/dt during that pass */
    int grad_owned;           /* grad came from the cache and goes back to it */
};

/* Buffers of n floats, 64-byte aligned, recycled per thread. */
float *ct_eager_buf_alloc(int64_t n);
float *ct_eager_buf_zeros(int64_t n);
void ct_eager_buf_free(float *p, int64_t n);

/* A new tensor (one reference, placed in the current scope) with
 * uninitialised data; NULL with the error record set on failure. */
ct_eager *ct_eager_new(int rank, const int64_t *dims);
/* Undo a creation: drop t from the current scope (when it is there) and
 * release the creation's reference. */
void ct_eager_discard(ct_eager *t);

/* One recorded operation. bwd accumulates dL/din[k] (+=) for every k
 * whose din[k] is not NULL, given dout = dL/dout. */
typedef struct ct_tape_node ct_tape_node;
typedef void (*ct_eager_bwd_fn)(const ct_tape_node *n, const float *dout, float *const *din);

#define CT_NODE_IATTR 24
struct ct_tape_node {
    const char *op;
    ct_eager_bwd_fn bwd;
    int n_in;
    ct_eager **in;            /* n_in references */
    ct_eager *out;            /* one reference */
    int64_t i[CT_NODE_IATTR];
    float f[4];
    void *aux;                /* owned copy of op-specific data (may be NULL) */
};

/* 1 when some tape records on this thread. */
int ct_tape_recording(void);
/* Record `op` on every tape recording on this thread (a no-op when none).
 * `proto` supplies op, bwd, i, f; in/out/aux are copied or referenced. */
ct_status ct_tape_record(const ct_tape_node *proto, int n_in, ct_eager *const *in, ct_eager *out,
                         const void *aux, size_t aux_size);

/* Gradients of target seeded by `seed` (target's numel floats), ACCUMULATED
 * into acc[i] (wrt[i]'s numel floats each). The primitive behind
 * ct_tape_gradient and tape-defined layers. */
ct_status ct_tape_backward_into(ct_tape *t, ct_eager *target, const float *seed, int n, ct_eager *const *wrt,
                                float *const *acc);

#endif
