/* Building the chain of stages a training run reads from. */
#include "stages.h"

/* On failure the stages built so far are closed (each owns the one below). */
static ct_status chain(ct_stage **top, ct_status s, ct_stage *const *next)
{
    if (s != CT_OK) {
        ct_stage_close(*top);
        *top = NULL;
        return s;
    }
    *top = *next;
    return CT_OK;
}

ct_status ct_pipeline_open(ct_stage *source, int64_t lo, int64_t hi, int owns_source, const ct_pipeline_options *o,
                           ct_stage **out)
{
    ct_stage *top = NULL, *next = NULL;
    *out = NULL;
    ct_status s = ct_range_open(source, lo, hi, owns_source, &top);
    if (s != CT_OK) {
        if (owns_source) ct_stage_close(source);
        return s;
    }
    int world = o->world > 0 ? o->world : 1;
    if (o->cache) CT_TRY(chain(&top, ct_cache_open(top, &next), &next));
    int buffered = o->shuffle && o->shuffle_buffer > 0 && o->shuffle_buffer < top->length;
    if (o->shuffle && !buffered) CT_TRY(chain(&top, ct_shuffle_open(top, o->seed, 0, 0, &next), &next));
    int64_t samples = top->length;
    CT_TRY(chain(&top, ct_shard_open(top, o->rank, world, o->batch_size, o->drop_remainder, &next), &next));
    /* A buffered shuffle mixes this rank's rows only (as tf.data's
     * shard-then-shuffle): its key includes the rank. */
    if (buffered)
        CT_TRY(chain(&top, ct_shuffle_open(top, o->seed, (uint64_t)o->rank + 1, o->shuffle_buffer, &next), &next));
    if (o->map || o->workers > 0) { /* workers also read (decode) in parallel */
        int64_t lo_b, hi_b;
        ct_shard_share(o->batch_size, o->rank, world, &lo_b, &hi_b);
        int depth = o->prefetch > 0 ? o->prefetch : 1;
        int window = (int)((hi_b - lo_b) * depth > 4096 ? 4096 : (hi_b - lo_b) * depth);
        CT_TRY(chain(&top, ct_map_open(top, o->map, o->map_ctx, o->workers, window, &next), &next));
    }
    CT_TRY(chain(&top, ct_batch_open(top, o->rank, world, o->batch_size, samples, o->drop_remainder, &next), &next));
    if (o->prefetch > 0) CT_TRY(chain(&top, ct_prefetch_open(top, o->prefetch, &next), &next));
    *out = top;
    return CT_OK;
}
