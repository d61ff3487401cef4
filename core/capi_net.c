/* The public model calls (ct_net_*): a compiled ct_model with the config
 * it came from, fit/evaluate/predict over ct_data or the config's
 * pipeline, C callbacks, data parallelism, and the pieces of a training
 * step for custom loops.
 *
 * The custom-loop pieces call what ct_model's own step calls (model.c,
 * shard_step), in the same order and with the same arguments: forward in
 * training mode at the model's step and seed, the compiled loss scaled by
 * 1/batch into the output gradient (from the logits when the loss is fused
 * with a final softmax/sigmoid), backward, regularizer gradients, the
 * optimizer step, step + 1. That is what makes a hand-written loop match
 * `ctrain train` bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "comm.h"
#include "config.h"
#include "inputs.h"
#include "model.h"
#include "stages.h"

struct ct_net {
    ct_config *cfg;
    ct_model *m;
    ct_inputs norm;           /* rescale / standardisation from a model file (else empty) */
    int have_norm;
    int64_t batch;            /* rows of the last forward */
    int out_dz;               /* the output gradient is dL/dz (fused loss) */
    int64_t cap;
    float *per_sample;        /* cap */
    float *acc;               /* n_values: gradients kept across an accumulating backward */
};

static ct_comm world_comm;
static int world_ready;

/* ---- creation ---------------------------------------------------------------------- */
static ct_status finish_net(ct_config *cfg, ct_model *m, ct_net **out)
{
    ct_net *n = calloc(1, sizeof *n);
    if (!n) {
        ct_model_destroy(m);
        ct_config_free(cfg);
        return CT_FAIL(CT_ERR_NOMEM, "ct_net: out of memory");
    }
    n->cfg = cfg;
    n->m = m;
    *out = n;
    return CT_OK;
}

static ct_status create(ct_config *cfg, ct_net **out)
{
    ct_model *m = NULL;
    ct_status s = ct_model_create(cfg, &m);
    if (s == CT_OK && cfg->model && cfg->model->weights) s = ct_checkpoint_load_weights(cfg->model->weights, m);
    if (s != CT_OK) {
        ct_model_destroy(m);
        ct_config_free(cfg);
        return s;
    }
    return finish_net(cfg, m, out);
}

ct_status ct_net_load(const char *path, const char *const *overrides, int n_overrides, ct_net **out)
{
    *out = NULL;
    if (!path) return CT_FAIL(CT_ERR_USAGE, "ct_net_load: no path");
    ct_register_builtins();
    ct_config *cfg = NULL;
    if (ct_checkpoint_is_hdf5(path)) {
        ct_model *m = NULL;
        ct_inputs norm = {0};
        CT_TRY(ct_checkpoint_load(path, &cfg, &m, &norm));
        for (int i = 0; i < n_overrides; i++) {
            ct_status s = ct_config_override(cfg, overrides[i]);
            if (s != CT_OK) {
                ct_model_destroy(m);
                ct_config_free(cfg);
                ct_inputs_free(&norm);
                return s;
            }
        }
        CT_TRY(finish_net(cfg, m, out));
        (*out)->norm = norm;
        (*out)->have_norm = 1;
        return CT_OK;
    }
    CT_TRY(ct_config_load(path, overrides, n_overrides, &cfg));
    return create(cfg, out);
}

ct_status ct_net_from_text(const char *text, const char *name, ct_net **out)
{
    *out = NULL;
    if (!text) return CT_FAIL(CT_ERR_USAGE, "ct_net_from_text: no text");
    ct_register_builtins();
    ct_config *cfg = NULL;
    CT_TRY(ct_config_parse(text, strlen(text), name ? name : "<text>", NULL, &cfg));
    return create(cfg, out);
}

void ct_net_destroy(ct_net *n)
{
    if (!n) return;
    ct_model_destroy(n->m);
    ct_config_free(n->cfg);
    if (n->have_norm) ct_inputs_free(&n->norm);
    free(n->per_sample);
    free(n->acc);
    free(n);
}

ct_status ct_net_save(const ct_net *n, const char *path)
{
    if (!n || !path) return CT_FAIL(CT_ERR_USAGE, "ct_net_save: NULL net or path");
    return ct_checkpoint_save(path, n->cfg, n->m, n->have_norm ? &n->norm : NULL, NULL, 0);
}

int64_t ct_net_input_size(const ct_net *n) { return n ? n->m->graph->input_size : 0; }
int64_t ct_net_output_size(const ct_net *n) { return n ? n->m->out_dim : 0; }
int64_t ct_net_target_size(const ct_net *n) { return n ? n->m->y_size : 0; }
int64_t ct_net_batch_size(const ct_net *n) { return n ? n->m->batch_size : 0; }
double ct_net_learning_rate(const ct_net *n) { return n ? n->m->lr : 0; }
void ct_net_set_learning_rate(ct_net *n, double lr)
{
    if (n) n->m->lr = lr;
}
uint64_t ct_net_step(const ct_net *n) { return n ? n->m->step : 0; }

/* The optimizer updates its whole slab; weights outside `keep`'s
 * complement (frozen or not chosen) are put back afterwards, values and
 * optimizer slots alike, so they do not move (Adam's momentum and weight
 * decay would move them even with zero gradients). */
typedef struct kept {
    int n;
    ct_segment *r;            /* ranges of [0, n_trainable) to restore */
    float *buf;               /* their values, then each slot's */
} kept;

static void kept_free(kept *k)
{
    free(k->r);
    free(k->buf);
    memset(k, 0, sizeof *k);
}

/* the complement of segs (sorted by offset) within [0, n) */
static ct_status keep_complement(const ct_model *m, const ct_segment *segs, int ns, kept *k)
{
    const ct_graph *g = m->graph;
    memset(k, 0, sizeof *k);
    k->r = malloc(sizeof(ct_segment) * (size_t)(ns + 1));
    if (!k->r) return CT_FAIL(CT_ERR_NOMEM, "apply_gradients: out of memory");
    int64_t at = 0, total = 0;
    for (int i = 0; i <= ns; i++) {
        int64_t end = i < ns ? segs[i].offset : g->n_trainable;
        if (end > at) {
            k->r[k->n++] = (ct_segment){at, end - at};
            total += end - at;
        }
        if (i < ns && segs[i].offset + segs[i].size > at) at = segs[i].offset + segs[i].size;
    }
    if (!total) return CT_OK;
    int slabs = 1 + m->opt->n_slots;
    if (!(k->buf = malloc(sizeof(float) * (size_t)(total * slabs)))) {
        kept_free(k);
        return CT_FAIL(CT_ERR_NOMEM, "apply_gradients: out of memory");
    }
    float *p = k->buf;
    for (int s = 0; s < slabs; s++) {
        const float *src = s == 0 ? g->values : m->opt->slots + (int64_t)(s - 1) * m->opt->n;
        for (int i = 0; i < k->n; i++, p += k->r[i - 1].size)
            memcpy(p, src + k->r[i].offset, sizeof(float) * (size_t)k->r[i].size);
    }
    return CT_OK;
}

static void keep_restore(ct_model *m, const kept *k)
{
    if (!k->buf) return;
    const float *p = k->buf;
    for (int s = 0; s < 1 + m->opt->n_slots; s++) {
        float *dst = s == 0 ? m->graph->values : m->opt->slots + (int64_t)(s - 1) * m->opt->n;
        for (int i = 0; i < k->n; p += k->r[i].size, i++)
            memcpy(dst + k->r[i].offset, p, sizeof(float) * (size_t)k->r[i].size);
    }
}

static int seg_cmp(const void *a, const void *b)
{
    int64_t x = ((const ct_segment *)a)->offset, y = ((const ct_segment *)b)->offset;
    return (x > y) - (x < y);
}

/* ---- logs and callbacks ----------------------------------------------------------------- */
int ct_logs_count(const ct_logs *l) { return l ? l->n : 0; }
const char *ct_logs_name(const ct_logs *l, int i) { return l && i >= 0 && i < l->n ? l->names[i] : ""; }
double ct_logs_value(const ct_logs *l, int i) { return l && i >= 0 && i < l->n ? l->values[i] : 0; }

typedef struct hook_ctx {
    ct_net *n;
    const ct_net_callbacks *cb;
    ct_comm *comm;            /* data parallel: rank 0 decides, every rank follows */
    kept frozen;              /* weights of frozen layers, put back after every step */
} hook_ctx;

/* Rank 0's decision (stop, learning rate) for everyone. */
static ct_status share(hook_ctx *h, int *stop)
{
    if (!h->comm) return CT_OK;
    double rec[2] = {h->n->m->lr, (double)*stop};
    CT_TRY(ct_comm_bcast(h->comm, rec, sizeof rec, 0));
    h->n->m->lr = rec[0];
    *stop = rec[1] != 0;
    return CT_OK;
}

static int on_root(const hook_ctx *h) { return !h->comm || h->comm->rank == 0; }

static ct_status hook_epoch_begin(void *ctx, int epoch, int epochs, int64_t steps)
{
    hook_ctx *h = ctx;
    if (on_root(h) && h->cb->epoch_begin) CT_TRY(h->cb->epoch_begin(h->cb->ctx, h->n, epoch));
    int stop = 0;
    return share(h, &stop);
}

static ct_status hook_batch_end(void *ctx, int epoch, int64_t step, int64_t steps, const ct_logs *logs, int *stop)
{
    hook_ctx *h = ctx;
    keep_restore(h->n->m, &h->frozen);
    if (on_root(h) && h->cb->batch_end) CT_TRY(h->cb->batch_end(h->cb->ctx, h->n, epoch, step, logs, stop));
    return share(h, stop);
}

static ct_status hook_epoch_end(void *ctx, int epoch, ct_logs *logs, double seconds, int *stop)
{
    hook_ctx *h = ctx;
    if (on_root(h) && h->cb->epoch_end) CT_TRY(h->cb->epoch_end(h->cb->ctx, h->n, epoch, logs, stop));
    return share(h, stop);
}

static ct_fit_hooks hooks_for(hook_ctx *h, ct_net *n, const ct_net_callbacks *cb)
{
    static const ct_net_callbacks none = {0};
    memset(h, 0, sizeof *h);
    h->n = n;
    h->cb = cb ? cb : &none;
    h->comm = n->m->comm;
    ct_fit_hooks f = {.ctx = h, .epoch_begin = hook_epoch_begin, .batch_end = hook_batch_end,
                      .epoch_end = hook_epoch_end};
    return f;
}

/* ---- fit, evaluate, predict ------------------------------------------------------------------- */
ct_status ct_net_fit(ct_net *n, const ct_data *train, const ct_data *val, int epochs, const ct_net_callbacks *cb)
{
    if (!n || !train) return CT_FAIL(CT_ERR_USAGE, "ct_net_fit: NULL net or training data");
    hook_ctx h;
    ct_fit_hooks f = hooks_for(&h, n, cb);
    n->m->state = (ct_train_state){0};
    CT_TRY(keep_complement(n->m, n->m->graph->segments, n->m->graph->n_segments, &h.frozen));
    ct_status s = ct_model_fit(n->m, train, val, epochs, 1, 1, &f);
    kept_free(&h.frozen);
    return s;
}

ct_status ct_net_fit_config(ct_net *n, const ct_net_callbacks *cb)
{
    if (!n) return CT_FAIL(CT_ERR_USAGE, "ct_net_fit_config: NULL net");
    ct_inputs in = {0};
    ct_stage *pipe = NULL;
    ct_model *m = n->m;
    int rank = m->comm ? m->comm->rank : 0, world = m->comm ? m->comm->size : 1;
    ct_status s = ct_inputs_load(n->cfg, 1, &in);
    if (s == CT_OK) s = ct_inputs_pipeline(&in, n->cfg, m->seed, m->batch_size, rank, world, &pipe);
    if (s == CT_OK) {
        hook_ctx h;
        ct_fit_hooks f = hooks_for(&h, n, cb);
        s = keep_complement(m, m->graph->segments, m->graph->n_segments, &h.frozen);
        if (s == CT_OK)
            s = ct_model_fit_stream(m, pipe, in.val.n ? &in.val : NULL, n->cfg->train->epochs,
                                    n->cfg->train->validation_freq, &f);
        kept_free(&h.frozen);
    }
    ct_stage_close(pipe);
    ct_inputs_free(&in);
    return s;
}

ct_status ct_net_evaluate(ct_net *n, const ct_data *d, double *loss, double *metrics, int n_metrics)
{
    if (!n || !d) return CT_FAIL(CT_ERR_USAGE, "ct_net_evaluate: NULL net or data");
    ct_logs logs = {0};
    CT_TRY(ct_model_evaluate(n->m, d, &logs));
    if (loss) ct_logs_get(&logs, "loss", loss);
    for (int i = 0; metrics && i < n_metrics && i < n->m->n_metrics; i++)
        ct_logs_get(&logs, n->m->metrics[i].name, &metrics[i]);
    return CT_OK;
}

int ct_net_metric_count(const ct_net *n) { return n ? n->m->n_metrics : 0; }
const char *ct_net_metric_name(const ct_net *n, int i)
{
    return n && i >= 0 && i < n->m->n_metrics ? n->m->metrics[i].name : "";
}

ct_status ct_net_predict(ct_net *n, const float *x, int64_t count, float *out)
{
    if (!n || (count > 0 && (!x || !out))) return CT_FAIL(CT_ERR_USAGE, "ct_net_predict: NULL argument");
    return ct_model_predict(n->m, x, count, out);
}

/* ---- data parallelism -------------------------------------------------------------------------- */
ct_status ct_mpi_init(int *argc, char ***argv, int *rank, int *size)
{
    if (!world_ready) {
        CT_TRY(ct_comm_init(argc, argv, &world_comm));
        world_ready = 1;
    }
    if (rank) *rank = world_comm.rank;
    if (size) *size = world_comm.size;
    return CT_OK;
}

void ct_mpi_finalize(void)
{
    if (!world_ready) return;
    ct_comm_finalize(&world_comm);
    world_ready = 0;
}

ct_status ct_net_data_parallel(ct_net *n)
{
    if (!n) return CT_FAIL(CT_ERR_USAGE, "ct_net_data_parallel: NULL net");
    if (!world_ready) CT_TRY(ct_mpi_init(NULL, NULL, NULL, NULL));
    ct_model *m = n->m;
    CT_TRY(ct_model_set_comm(m, &world_comm, CT_ALLREDUCE_RING, 0, (int64_t)1 << 20));
    if (world_comm.size == 1) return CT_OK;
    int64_t mine[2] = {m->graph->n_values, m->graph->n_trainable}, root[2] = {mine[0], mine[1]};
    CT_TRY(ct_comm_bcast(&world_comm, root, sizeof root, 0));
    if (root[0] != mine[0] || root[1] != mine[1])
        return CT_FAIL(CT_ERR_CONFIG, "rank %d built %lld weights, rank 0 %lld: every rank must build the same net",
                       world_comm.rank, (long long)mine[0], (long long)root[0]);
    return ct_comm_bcast(&world_comm, m->graph->values, (int64_t)sizeof(float) * m->graph->n_values, 0);
}

/* ---- custom training loops ------------------------------------------------------------------------ */
static ct_status ensure_cap(ct_net *n, int64_t batch)
{
    ct_graph *g = n->m->graph;
    if (g->batch_cap < batch) CT_TRY(ct_graph_plan(g, batch));
    if (n->cap < batch) {
        float *p = realloc(n->per_sample, sizeof(float) * (size_t)batch);
        if (!p) return CT_FAIL(CT_ERR_NOMEM, "ct_net: out of memory for a batch of %lld", (long long)batch);
        n->per_sample = p;
        n->cap = batch;
    }
    return CT_OK;
}

ct_status ct_net_forward(ct_net *n, const float *x, int64_t batch, int training, const float **out)
{
    if (!n || !x || batch < 1) return CT_FAIL(CT_ERR_USAGE, "ct_net_forward: needs a net, x and batch >= 1");
    CT_TRY(ensure_cap(n, batch));
    ct_model *m = n->m;
    m->graph->row0 = 0;
    ct_graph_forward(m->graph, x, batch, training != 0, m->step, m->seed);
    n->batch = batch;
    n->out_dz = -1;
    if (out) *out = ct_graph_output(m->graph)->y;
    return CT_OK;
}

ct_status ct_net_loss(ct_net *n, const float *y, double *loss)
{
    if (!n || !y) return CT_FAIL(CT_ERR_USAGE, "ct_net_loss: NULL net or targets");
    if (n->batch < 1) return CT_FAIL(CT_ERR_USAGE, "ct_net_loss: no forward pass yet");
    ct_model *m = n->m;
    ct_node *out = ct_graph_output(m->graph);
    ct_loss l = m->loss;
    if (m->fused) l.from_logits = 1;
    ct_status st = CT_OK;
    double sum = ct_loss_compute(&l, m->fused ? out->z : out->y, y, NULL, n->batch, m->out_dim, out->dy,
                                 1.0f / (float)n->batch, n->per_sample, &st);
    CT_TRY(st);
    n->out_dz = m->fused;
    if (loss) *loss = sum / (double)n->batch + ct_graph_penalty(m->graph);
    return CT_OK;
}

ct_status ct_net_set_output_grad(ct_net *n, const float *dout)
{
    if (!n || !dout) return CT_FAIL(CT_ERR_USAGE, "ct_net_set_output_grad: NULL net or gradient");
    if (n->batch < 1) return CT_FAIL(CT_ERR_USAGE, "ct_net_set_output_grad: no forward pass yet");
    ct_node *out = ct_graph_output(n->m->graph);
    memcpy(out->dy, dout, sizeof(float) * (size_t)(n->batch * out->out_size));
    n->out_dz = 0;
    return CT_OK;
}

ct_status ct_net_backward(ct_net *n, int accumulate)
{
    if (!n) return CT_FAIL(CT_ERR_USAGE, "ct_net_backward: NULL net");
    if (n->out_dz < 0)
        return CT_FAIL(CT_ERR_USAGE, "ct_net_backward: no output gradient (call ct_net_loss or ct_net_set_output_grad "
                                     "after the forward pass)");
    ct_graph *g = n->m->graph;
    if (accumulate) {
        if (!n->acc && !(n->acc = malloc(sizeof(float) * (size_t)(g->n_values ? g->n_values : 1))))
            return CT_FAIL(CT_ERR_NOMEM, "ct_net_backward: out of memory");
        memcpy(n->acc, g->grads, sizeof(float) * (size_t)g->n_values);
    }
    /* a custom loop reduces when it says so (ct_net_allreduce_grads) */
    void (*ready)(void *, int64_t) = g->grads_ready;
    g->grads_ready = NULL;
    ct_graph_backward(g, n->batch, n->out_dz, n->m->step, n->m->seed);
    g->grads_ready = ready;
    if (accumulate)
        for (int64_t i = 0; i < g->n_values; i++) g->grads[i] += n->acc[i];
    n->out_dz = -1;
    return CT_OK;
}

int ct_net_param_count(const ct_net *n) { return n ? n->m->graph->n_params : 0; }

int ct_net_param_find(const ct_net *n, const char *name)
{
    for (int i = 0; n && name && i < n->m->graph->n_params; i++)
        if (!strcmp(n->m->graph->params[i].full_name, name)) return i;
    return -1;
}

const char *ct_net_param_name(const ct_net *n, int i)
{
    return n && i >= 0 && i < n->m->graph->n_params ? n->m->graph->params[i].full_name : "";
}

int64_t ct_net_param_size(const ct_net *n, int i)
{
    const ct_layer_param *p = n && i >= 0 && i < n->m->graph->n_params ? ct_graph_param(n->m->graph, i) : NULL;
    return p ? ct_shape_numel(&p->shape) : 0;
}

float *ct_net_param_value(ct_net *n, int i)
{
    const ct_layer_param *p = n && i >= 0 && i < n->m->graph->n_params ? ct_graph_param(n->m->graph, i) : NULL;
    return p ? p->value : NULL;
}

float *ct_net_param_grad(ct_net *n, int i)
{
    const ct_layer_param *p = n && i >= 0 && i < n->m->graph->n_params ? ct_graph_param(n->m->graph, i) : NULL;
    return p ? p->grad : NULL;
}

ct_status ct_net_allreduce_grads(ct_net *n)
{
    if (!n) return CT_FAIL(CT_ERR_USAGE, "ct_net_allreduce_grads: NULL net");
    ct_model *m = n->m;
    if (!m->comm || m->comm->size < 2) return CT_OK;
    return ct_comm_allreduce(m->comm, m->graph->grads, m->graph->n_trainable, m->algo, 1.0f / (float)m->comm->size);
}

static int layer_index(const ct_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].layer->name, name)) return i;
    return -1;
}

ct_status ct_net_apply_gradients(ct_net *n, int n_layers, const char *const *layers)
{
    if (!n || (n_layers > 0 && !layers)) return CT_FAIL(CT_ERR_USAGE, "ct_net_apply_gradients: NULL argument");
    ct_model *m = n->m;
    ct_graph *g = m->graph;
    ct_segment *segs = g->segments;
    int ns = g->n_segments;
    if (n_layers > 0) {
        if (!(segs = malloc(sizeof(ct_segment) * (size_t)(g->n_params ? g->n_params : 1))))
            return CT_FAIL(CT_ERR_NOMEM, "ct_net_apply_gradients: out of memory");
        ns = 0;
        for (int k = 0; k < n_layers; k++) {
            int node = layer_index(g, layers[k]);
            if (node < 0) {
                free(segs);
                return CT_FAIL(CT_ERR_USAGE, "ct_net_apply_gradients: no layer '%s'", layers[k]);
            }
            for (int i = 0; i < g->n_params; i++) {
                const ct_layer_param *p = ct_graph_param(g, i);
                if (g->params[i].node == node && p->trainable && p->offset < g->n_trainable)
                    segs[ns++] = (ct_segment){p->offset, ct_shape_numel(&p->shape)};
            }
        }
        qsort(segs, (size_t)ns, sizeof *segs, seg_cmp);
    }
    kept k;
    ct_status s = keep_complement(m, segs, ns, &k);
    if (s == CT_OK) {
        ct_graph_regularize(g);
        ct_optimizer_step(m->opt, g->values, g->grads, segs, ns, m->lr);
        keep_restore(m, &k);
        m->step++;
    }
    kept_free(&k);
    if (segs != g->segments) free(segs);
    return s;
}

ct_status ct_net_set_trainable(ct_net *n, const char *layer, int trainable)
{
    if (!n || !layer) return CT_FAIL(CT_ERR_USAGE, "ct_net_set_trainable: NULL argument");
    ct_graph *g = n->m->graph;
    int node = layer_index(g, layer);
    if (node < 0) return CT_FAIL(CT_ERR_USAGE, "ct_net_set_trainable: no layer '%s'", layer);
    ct_layer *l = g->nodes[node].layer;
    for (int k = 0; k < l->n_params; k++)
        if (l->params[k].offset < g->n_trainable) l->params[k].trainable = trainable != 0;
    /* the optimizer and fit step over g->segments: rebuild them from the
     * flags (at most one per parameter) */
    ct_segment *segs = realloc(g->segments, sizeof(ct_segment) * (size_t)(g->n_params ? g->n_params : 1));
    if (!segs) return CT_FAIL(CT_ERR_NOMEM, "ct_net_set_trainable: out of memory");
    g->segments = segs;
    int ns = 0;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = ct_graph_param(g, i);
        if (!p->trainable || p->offset >= g->n_trainable) continue;
        int64_t size = ct_shape_numel(&p->shape);
        if (ns > 0 && g->segments[ns - 1].offset + g->segments[ns - 1].size == p->offset)
            g->segments[ns - 1].size += size;
        else
            g->segments[ns++] = (ct_segment){p->offset, size};
    }
    g->n_segments = ns;
    return CT_OK;
}

/* ---- the config's training batches ------------------------------------------------------------------ */
struct ct_batches {
    ct_inputs in;
    ct_stage *pipe;
    float *x, *y;
};

ct_status ct_net_batches(ct_net *n, ct_batches **out)
{
    *out = NULL;
    if (!n) return CT_FAIL(CT_ERR_USAGE, "ct_net_batches: NULL net");
    ct_batches *b = calloc(1, sizeof *b);
    if (!b) return CT_FAIL(CT_ERR_NOMEM, "ct_net_batches: out of memory");
    ct_model *m = n->m;
    int rank = m->comm ? m->comm->rank : 0, world = m->comm ? m->comm->size : 1;
    ct_status s = ct_inputs_load(n->cfg, 1, &b->in);
    if (s == CT_OK) s = ct_inputs_pipeline(&b->in, n->cfg, m->seed, m->batch_size, rank, world, &b->pipe);
    if (s == CT_OK) {
        int64_t rows = b->pipe->batch_rows > 0 ? b->pipe->batch_rows : 1;
        b->x = malloc(sizeof(float) * (size_t)(rows * ct_shape_numel(&b->pipe->x_shape)));
        b->y = malloc(sizeof(float) * (size_t)(rows * (ct_shape_numel(&b->pipe->y_shape) + 1)));
        if (!b->x || !b->y) s = CT_FAIL(CT_ERR_NOMEM, "ct_net_batches: out of memory");
    }
    if (s == CT_OK) s = ct_stage_reset(b->pipe, 0);
    if (s != CT_OK) {
        ct_batches_destroy(b);
        return s;
    }
    *out = b;
    return CT_OK;
}

void ct_batches_destroy(ct_batches *b)
{
    if (!b) return;
    ct_stage_close(b->pipe);
    ct_inputs_free(&b->in);
    free(b->x);
    free(b->y);
    free(b);
}

int64_t ct_batches_steps(const ct_batches *b) { return b ? b->pipe->length : 0; }

ct_status ct_batches_epoch(ct_batches *b, int epoch)
{
    if (!b || epoch < 0) return CT_FAIL(CT_ERR_USAGE, "ct_batches_epoch: NULL batches or negative epoch");
    return ct_stage_reset(b->pipe, (uint64_t)epoch);
}

ct_status ct_batches_next(ct_batches *b, const float **x, const float **y, int64_t *rows, int *end)
{
    if (!b || !x || !y || !rows || !end) return CT_FAIL(CT_ERR_USAGE, "ct_batches_next: NULL argument");
    ct_sample smp = {b->x, b->y, 0, 0};
    CT_TRY(ct_stage_next(b->pipe, &smp, end));
    *x = b->x;
    *y = b->y;
    *rows = *end ? 0 : smp.rows;
    return CT_OK;
}
