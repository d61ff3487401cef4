/* The pipeline stages between a source and the trainer, tf.data style:
 *
 *   source -> range -> [cache] -> shuffle -> shard -> [map] -> batch -> [prefetch]
 *
 * (with a buffered shuffle, shard comes before shuffle so each rank only
 * reads its own rows). Each stage owns the stage below it (close closes
 * the chain) and keeps a cursor: tell() is the number of items it has
 * handed out this epoch, seek() goes back to such a position, reset(epoch)
 * starts an epoch. Randomness is keyed by (seed, epoch, position or
 * sample index), never by timing, so the batches are the same bits for any
 * number of workers and any prefetch depth, and seek() resumes exactly.
 *
 * Sharding follows the trainer: a global batch of b rows is split into
 * world contiguous shares [b*r/world, b*(r+1)/world); rank r's stream is
 * its share of every global batch, so the ranks together see each sample
 * of the epoch exactly once and one process sees what all ranks see. */
#ifndef CT_STAGES_H
#define CT_STAGES_H

#include "stage.h"

/* Rank r's share [lo, hi) of a global batch of b rows over `world` ranks. */
static inline void ct_shard_share(int64_t b, int rank, int world, int64_t *lo, int64_t *hi)
{
    *lo = b * rank / world;
    *hi = b * (rank + 1) / world;
}

/* Positions [lo, hi) of `up` (which needs get), e.g. the training part in
 * front of validation_split's tail. Closes `up` on close only when
 * owns_up. Sample indices pass through (they key augmentation). */
ct_status ct_range_open(ct_stage *up, int64_t lo, int64_t hi, int owns_up, ct_stage **out);

/* Keeps every sample `up` yields in memory the first time it is read
 * (decoded images, parsed rows); later reads, in any epoch and any order,
 * are copies. Needs get on `up`. */
ct_status ct_cache_open(ct_stage *up, ct_stage **out);

/* A fresh order every epoch, keyed by (seed, epoch, salt). buffer <= 0 or
 * >= length: a full permutation (random access preserved; needs get on
 * `up`). Otherwise tf.data's buffered shuffle: a buffer of `buffer`
 * samples, each output a uniformly drawn buffer slot, refilled with the
 * next sample of `up`. */
ct_status ct_shuffle_open(ct_stage *up, uint64_t seed, uint64_t salt, int64_t buffer, ct_stage **out);

/* Rank `rank`'s share of every global batch of `global_batch` positions
 * of `up` (needs get and a known length). drop_remainder drops the last
 * short global batch. */
ct_status ct_shard_open(ct_stage *up, int rank, int world, int64_t global_batch, int drop_remainder,
                        ct_stage **out);

/* Transform each sample in place: must be thread-safe and depend only on
 * (epoch, the sample) so results do not depend on which worker runs it.
 * `scratch` holds numel(x_shape) floats of the calling worker's own,
 * allocated once with the stage (so nothing is allocated per sample). A
 * failure (a sample that cannot be used) ends the epoch with its message
 * when the consumer reaches that sample. */
typedef ct_status (*ct_map_fn)(void *ctx, uint64_t epoch, ct_sample *s, float *scratch);

/* Apply fn (NULL: none, the workers only read) on `workers` threads (0:
 * inline in the caller), keeping the order: samples are handed out in
 * upstream order. At most `window`
 * samples are in flight ahead of the consumer. Upstreams with get are
 * read by the workers in parallel; others are read one at a time. */
ct_status ct_map_open(ct_stage *up, ct_map_fn fn, void *ctx, int workers, int window, ct_stage **out);

/* Groups rank `rank`'s samples into its shares of the global batches of an
 * epoch of `global_samples` samples: next() writes `rows` samples (possibly
 * 0 in a short last batch, so every rank takes the same number of steps).
 * length = steps per epoch; batch_rows = most rows in one batch. */
ct_status ct_batch_open(ct_stage *up, int rank, int world, int64_t global_batch, int64_t global_samples,
                        int drop_remainder, ct_stage **out);

/* Runs `up` (a batch stage) on a background thread, keeping up to `depth`
 * batches ready in buffers allocated once. */
ct_status ct_prefetch_open(ct_stage *up, int depth, ct_stage **out);

/* Zero-copy access to a prefetch stage's next batch: *out points into the
 * stage's buffer until ct_prefetch_release. */
ct_status ct_prefetch_acquire(ct_stage *s, ct_sample *out, int *eof);
void ct_prefetch_release(ct_stage *s);
int ct_stage_is_prefetch(const ct_stage *s);

typedef struct ct_pipeline_options {
    uint64_t seed;
    int shuffle;              /* a new order every epoch */
    int64_t shuffle_buffer;   /* 0: full shuffle */
    int cache;
    int workers;              /* map threads; 0: inline */
    int prefetch;             /* batches ready ahead; 0: none */
    int64_t batch_size;       /* the global batch */
    int rank, world;
    int drop_remainder;
    ct_map_fn map;            /* NULL: nothing to apply (a map stage still reads on the workers) */
    void *map_ctx;
} ct_pipeline_options;

/* The whole chain over `source` positions [lo, hi) (source needs get; it
 * is closed with the chain only when owns_source). The result is a batch
 * stage (or a prefetch stage over one). */
ct_status ct_pipeline_open(ct_stage *source, int64_t lo, int64_t hi, int owns_source, const ct_pipeline_options *o,
                           ct_stage **out);

#endif
