/* Gradient buckets allreduced while the backward pass still runs.
 *
 * The gradient slab is cut into buckets at the given boundaries; backward
 * walks the layers in reverse, so the slab becomes final from its end
 * towards its start. ct_grad_sync_ready(offset) says "everything at
 * [offset, n) is final": each bucket that lies wholly in that range is
 * handed to a communication thread, which allreduces the buckets one after
 * another, last bucket first (the same order on every rank, as the ring
 * requires), while the caller computes the gradients below. The caller
 * waits for all buckets before it reads the slab.
 *
 * The communication thread is the only thread that calls MPI between
 * ct_grad_sync_start and ct_grad_sync_wait; ct_comm_init asks for
 * MPI_THREAD_SERIALIZED so that this is allowed. */
#ifndef CT_GRAD_SYNC_H
#define CT_GRAD_SYNC_H

#include <stdint.h>

#include "comm.h"

typedef struct ct_grad_sync ct_grad_sync;

/* bounds: n_buckets + 1 increasing offsets, bounds[0] = 0 and
 * bounds[n_buckets] = n; the slab stays the caller's. */
ct_status ct_grad_sync_create(ct_comm *c, float *slab, const int64_t *bounds, int n_buckets, ct_reduce_algo algo,
                              int fp16, float scale, ct_grad_sync **out);
void ct_grad_sync_destroy(ct_grad_sync *s);

/* A new step: no bucket is ready. */
void ct_grad_sync_start(ct_grad_sync *s);
/* Gradients at [offset, n) are final. Cheap; call after each layer. */
void ct_grad_sync_ready(ct_grad_sync *s, int64_t offset);
/* Marks the whole slab ready and waits until every bucket is reduced;
 * returns the first error of the step. */
ct_status ct_grad_sync_wait(ct_grad_sync *s);

/* Cut [0, n) at parameter boundaries (segment starts) into buckets of at
 * least `bucket_bytes`, counted from the end. Writes up to max+1 bounds;
 * returns the number of buckets. */
int ct_grad_sync_plan(const int64_t *starts, int n_starts, int64_t n, int64_t bucket_bytes, int64_t *bounds, int max);

#endif
