/* Compile, train, evaluate, predict. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#include "rng.h"
#include "stages.h"

void ct_logs_set(ct_logs *l, const char *name, double v)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) {
            l->values[i] = v;
            return;
        }
    if (l->n >= CT_MAX_LOGS) return;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
    l->values[l->n++] = v;
}

int ct_logs_get(const ct_logs *l, const char *name, double *v)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0) {
            *v = l->values[i];
            return 1;
        }
    return 0;
}

static const char *conf_src(const ct_config *cfg) { return cfg->source ? cfg->source : "config"; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_status compile_optimizer(const Ctrain__TrainConfig *t, ct_model *m)
{
    ct_optim_config oc;
    CT_TRY(ct_optim_defaults(t->optimizer, &oc));
    if (t->has_learning_rate) oc.learning_rate = t->learning_rate;
    if (t->has_momentum) oc.momentum = t->momentum;
    if (t->has_nesterov) oc.nesterov = t->nesterov;
    if (t->has_beta_1) oc.beta_1 = t->beta_1;
    if (t->has_beta_2) oc.beta_2 = t->beta_2;
    if (t->has_epsilon) oc.epsilon = t->epsilon;
    if (t->has_amsgrad) oc.amsgrad = t->amsgrad;
    if (t->has_weight_decay) oc.weight_decay = t->weight_decay;
    if (t->has_rho) oc.rho = t->rho;
    if (t->has_centered) oc.centered = t->centered;
    if (t->has_initial_accumulator_value) oc.initial_accumulator_value = t->initial_accumulator_value;
    if (t->has_clipnorm) oc.clipnorm = t->clipnorm;
    if (t->has_clipvalue) oc.clipvalue = t->clipvalue;
    if (t->has_global_clipnorm) oc.global_clipnorm = t->global_clipnorm;
    m->lr = oc.learning_rate;
    return ct_optimizer_create(&oc, m->graph->n_trainable, &m->opt);
}

/* Keras takes the logits of a final softmax/sigmoid for cross-entropy
 * (here only where no other layer reads the output, since the loss then
 * writes dL/dz). */
static int fusable_at(const ct_graph *g, int node, const ct_loss *l)
{
    const ct_node *n = &g->nodes[node];
    const ct_layer *out = n->layer;
    if (l->from_logits || n->last_consumer != node) return 0;
    if (out->act == CT_ACT_SOFTMAX) return l->kind == CT_LOSS_CCE || l->kind == CT_LOSS_SCCE;
    if (out->act == CT_ACT_SIGMOID) return l->kind == CT_LOSS_BCE;
    return 0;
}

/* Calls fn(output index or -1 for all, value) for each entry of a
 * per-output key; the config reader has checked the names. */
static int output_by_name(const ct_model *m, const char *name)
{
    for (int k = 0; k < m->n_outputs; k++)
        if (strcmp(m->outputs[k].name, name) == 0) return k;
    return -1;
}

static ct_status set_losses(const ct_config *cfg, ct_model *m)
{
    const Ctrain__TrainConfig *t = cfg->train;
    char *copy = strdup(t->loss);
    if (!copy) return CT_FAIL(CT_ERR_NOMEM, "loss names");
    ct_status s = CT_OK;
    for (char *e = strtok(copy, ","); e && s == CT_OK; e = strtok(NULL, ",")) {
        char name[CT_NAME_MAX], val[128];
        const char *v = ct_config_output_entry(e, name, sizeof name, val, sizeof val);
        int k = name[0] ? output_by_name(m, name) : -1;
        if (name[0] && k < 0) {
            s = CT_FAIL(CT_ERR_CONFIG, "%s: [train] loss: '%s' is not an output", conf_src(cfg), name);
            break;
        }
        for (int o = 0; o < m->n_outputs && s == CT_OK; o++) {
            if (k >= 0 && o != k) continue;
            ct_model_output *out = &m->outputs[o];
            s = ct_loss_from_name(v, &out->loss);
            out->has_loss = 1;
            out->loss.from_logits = t->from_logits;
            out->loss.delta = t->delta;
        }
    }
    free(copy);
    return s;
}

static ct_status set_loss_weights(const Ctrain__TrainConfig *t, ct_model *m)
{
    for (size_t i = 0; i < t->n_loss_weights; i++) {
        char name[CT_NAME_MAX], val[128];
        const char *v = ct_config_output_entry(t->loss_weights[i], name, sizeof name, val, sizeof val);
        int k = name[0] ? output_by_name(m, name) : (int)i;
        if (k < 0 || k >= m->n_outputs)
            return CT_FAIL(CT_ERR_CONFIG, "[train] loss_weights: entry %zu ('%s') names no output", i + 1,
                           t->loss_weights[i]);
        m->outputs[k].weight = strtod(v, NULL);
    }
    return CT_OK;
}

/* Metrics in Keras's log order: every output's loss first (several
 * outputs), then each output's metrics, "<output>_<metric>". */
static ct_status set_metrics(const Ctrain__TrainConfig *t, ct_model *m)
{
    int multi = m->n_outputs > 1;
    for (int o = 0; multi && o < m->n_outputs; o++) {
        m->outputs[o].loss_metric = -1;
        if (!m->outputs[o].has_loss) continue;
        if (m->n_metrics >= CT_MAX_METRICS) return CT_FAIL(CT_ERR_CONFIG, "at most %d metrics", CT_MAX_METRICS);
        ct_metric *mt = &m->metrics[m->n_metrics];
        memset(mt, 0, sizeof *mt);
        mt->kind = CT_METRIC_LOSS;
        snprintf(mt->name, sizeof mt->name, "%.63s_loss", m->outputs[o].name);
        m->outputs[o].loss_metric = m->n_metrics;
        m->metric_output[m->n_metrics++] = o;
    }
    for (int o = 0; o < m->n_outputs; o++)
        for (size_t i = 0; i < t->n_metrics; i++) {
            char name[CT_NAME_MAX], val[128];
            const char *v = ct_config_output_entry(t->metrics[i], name, sizeof name, val, sizeof val);
            if (name[0] && strcmp(name, m->outputs[o].name) != 0) continue;
            if (m->n_metrics >= CT_MAX_METRICS) return CT_FAIL(CT_ERR_CONFIG, "at most %d metrics", CT_MAX_METRICS);
            ct_model_output *out = &m->outputs[o];
            ct_metric *mt = &m->metrics[m->n_metrics];
            CT_TRY(ct_metric_resolve(v, out->has_loss ? &out->loss : NULL, out->d, mt));
            if (multi) {
                char full[sizeof mt->name];
                snprintf(full, sizeof full, "%.63s_%.31s", out->name, mt->name);
                snprintf(mt->name, sizeof mt->name, "%s", full);
            }
            m->metric_output[m->n_metrics++] = o;
        }
    return CT_OK;
}

static ct_status compile_loss_metrics(const ct_config *cfg, ct_model *m)
{
    const Ctrain__TrainConfig *t = cfg->train;
    ct_graph *g = m->graph;
    if (!t || !t->loss) return CT_FAIL(CT_ERR_CONFIG, "%s: [train] needs loss = ...", conf_src(cfg));
    m->n_outputs = g->n_outputs;
    for (int o = 0; o < g->n_outputs; o++) {
        ct_model_output *out = &m->outputs[o];
        const ct_node *n = ct_graph_output_at(g, o);
        out->node = g->outputs[o];
        out->name = n->name;
        out->weight = 1;
        out->loss_metric = -1;
        const ct_shape *sh = &n->layer->out_shape;
        out->d = sh->rank ? sh->dims[sh->rank - 1] : 1;
        out->positions = n->out_size / out->d;
    }
    CT_TRY(set_losses(cfg, m));
    CT_TRY(set_loss_weights(t, m));
    CT_TRY(set_metrics(t, m));
    int64_t off = 0;
    for (int o = 0; o < m->n_outputs; o++) {
        ct_model_output *out = &m->outputs[o];
        int has_metric = 0;
        for (int k = 0; k < m->n_metrics; k++) has_metric |= m->metric_output[k] == o && m->metrics[k].kind != CT_METRIC_LOSS;
        out->fused = out->has_loss && fusable_at(g, out->node, &out->loss);
        int64_t width = out->has_loss ? ct_loss_target_width(&out->loss, out->d) : out->d;
        if (!out->has_loss && has_metric)
            for (int k = 0; k < m->n_metrics; k++)
                if (m->metric_output[k] == o && (m->metrics[k].kind == CT_METRIC_SPARSE_CATEGORICAL_ACCURACY ||
                                                 m->metrics[k].kind == CT_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY))
                    width = 1;
        out->y_size = out->has_loss || has_metric ? out->positions * width : 0;
        out->y_offset = off;
        off += out->y_size;
        m->pred_size += g->nodes[out->node].out_size;
    }
    m->y_size = off;
    m->loss = m->outputs[0].loss;
    m->fused = m->outputs[0].fused;
    m->out_dim = m->outputs[0].d;
    if (t->n_class_weight) {
        if (m->n_outputs > 1)
            return CT_FAIL(CT_ERR_CONFIG, "%s: [train] class_weight is for single-output models (as in Keras); "
                           "weigh the outputs with loss_weights", conf_src(cfg));
        m->class_weight = malloc(sizeof(double) * t->n_class_weight);
        if (!m->class_weight) return CT_FAIL(CT_ERR_NOMEM, "class weights");
        memcpy(m->class_weight, t->class_weight, sizeof(double) * t->n_class_weight);
        m->n_class_weight = (int)t->n_class_weight;
    }
    return CT_OK;
}

/* Test aid: CT_TEST_FAIL_RANK=r and CT_TEST_FAIL_STEP=s make rank r fail
 * at step s, to check that one failing rank ends the whole job. Read once
 * (ct_model_create), not on every step. */
static void read_test_failure(ct_model *m)
{
    const char *r = getenv("CT_TEST_FAIL_RANK"), *s = getenv("CT_TEST_FAIL_STEP");
    m->fail_rank = r && s ? atoi(r) : -1;
    m->fail_step = r && s ? (uint64_t)atoll(s) : 0;
}

ct_status ct_model_create(const ct_config *cfg, ct_model **out)
{
    ct_status s;
    ct_model *m = calloc(1, sizeof *m);
    if (!m) return CT_FAIL(CT_ERR_NOMEM, "model");
    const Ctrain__TrainConfig *t = cfg->train;
    m->seed = t ? (uint64_t)t->seed : 42;
    m->batch_size = t ? t->batch_size : 32;
    read_test_failure(m);
    if ((s = ct_graph_build(cfg, m->seed, &m->graph)) != CT_OK) goto fail;
    if (!t) {
        s = CT_FAIL(CT_ERR_CONFIG, "%s: missing [train] section", cfg->source ? cfg->source : "config");
        goto fail;
    }
    if ((s = compile_loss_metrics(cfg, m)) != CT_OK || (s = compile_optimizer(t, m)) != CT_OK) goto fail;
    *out = m;
    return CT_OK;
fail:
    ct_model_destroy(m);
    return s;
}

void ct_model_destroy(ct_model *m)
{
    if (!m) return;
    ct_grad_sync_destroy(m->sync);
    ct_graph_destroy(m->graph);
    ct_optimizer_destroy(m->opt);
    free(m->class_weight);
    free(m->bx);
    free(m->by);
    free(m->bw);
    free(m->loss_grad);
    free(m->per_sample);
    free(m);
}

/* Buffers for batches of up to cap rows. New buffers replace the old ones
 * only when all of them were allocated: after a failure m->cap and the
 * buffers still agree (the graph may hold a larger plan, which is fine). */
static ct_status plan(ct_model *m, int64_t cap)
{
    if (m->cap >= cap && m->graph->batch_cap >= cap) return CT_OK;
    CT_TRY(ct_graph_plan(m->graph, cap));
    float *bx = malloc(sizeof(float) * (size_t)(cap * m->graph->input_size));
    float *by = malloc(sizeof(float) * (size_t)(cap * (m->y_size ? 2 * m->y_size : 1))); /* rows, then split targets */
    float *bw = malloc(sizeof(float) * (size_t)cap);
    float *lg = malloc(sizeof(float) * (size_t)(cap * (m->pred_size ? m->pred_size : 1)));
    float *ps = malloc(sizeof(float) * (size_t)cap);
    if (!bx || !by || !bw || !lg || !ps) {
        free(bx);
        free(by);
        free(bw);
        free(lg);
        free(ps);
        return CT_FAIL(CT_ERR_NOMEM, "batch buffers for batch %lld", (long long)cap);
    }
    free(m->bx);
    free(m->by);
    free(m->bw);
    free(m->loss_grad);
    free(m->per_sample);
    m->bx = bx;
    m->by = by;
    m->bw = bw;
    m->loss_grad = lg;
    m->per_sample = ps;
    float *split = m->by + cap * m->y_size;
    for (int o = 0; o < m->n_outputs; o++) {
        m->outputs[o].y = split;
        split += cap * m->outputs[o].y_size;
    }
    m->cap = cap;
    return CT_OK;
}

ct_status ct_model_plan(ct_model *m, int64_t batch_cap) { return plan(m, batch_cap); }

/* Shapes that differ only by axes of size 1 ((28, 28) and (28, 28, 1))
 * hold the same samples; (14, 56) for (28, 28) is another image. Flat
 * data (a CSV row, a (n, k) array: rank 1 per sample) claims no shape and
 * fills any input of its size. */
int ct_model_same_shape(const ct_shape *a, const ct_shape *b)
{
    if (a->rank == 1) return ct_shape_numel(a) == ct_shape_numel(b);
    int i = 0, j = 0;
    for (;;) {
        while (i < a->rank && a->dims[i] == 1) i++;
        while (j < b->rank && b->dims[j] == 1) j++;
        if (i == a->rank || j == b->rank) return i == a->rank && j == b->rank;
        if (a->dims[i++] != b->dims[j++]) return 0;
    }
}

ct_status ct_model_check_shapes(const ct_model *m, const ct_shape *xs, const ct_shape *ys, int64_t num_classes,
                                const char *what)
{
    int64_t x_size = ct_shape_numel(xs), y_size = ys->rank ? ct_shape_numel(ys) : 0;
    char a[64], b[64];
    if (x_size != m->graph->input_size)
        return CT_FAIL(CT_ERR_SHAPE, "%s: samples have %lld values (%s), the model input expects %lld (%s)", what,
                       (long long)x_size, ct_shape_str(xs, 0, a, sizeof a),
                       (long long)m->graph->input_size, ct_shape_str(&m->graph->input_shape, 0, b, sizeof b));
    if (m->graph->n_inputs == 1 && !ct_model_same_shape(xs, &m->graph->input_shape))
        return CT_FAIL(CT_ERR_SHAPE, "%s: samples have shape %s, the model input expects %s (the same %lld values in "
                       "another shape; add a reshape layer if that is meant)", what, ct_shape_str(xs, 0, a, sizeof a),
                       ct_shape_str(&m->graph->input_shape, 0, b, sizeof b), (long long)x_size);
    int64_t want = m->y_size;
    if (m->n_outputs > 1 || m->outputs[0].positions > 1 || !m->outputs[0].has_loss) {
        if (y_size == want) return CT_OK;
        char list[512] = "";
        for (int o = 0; o < m->n_outputs; o++) {
            const ct_model_output *out = &m->outputs[o];
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s: %lld (%s)", o ? ", " : "", out->name,
                     (long long)out->y_size,
                     !out->has_loss ? "no loss" : out->loss.kind == CT_LOSS_SCCE ? "a class index per position"
                                                                                  : "the output's shape");
        }
        return CT_FAIL(CT_ERR_SHAPE, "%s: targets have %lld values per sample, the model's outputs take %lld: %s", what,
                       (long long)y_size, (long long)want, list);
    }
    if (y_size != want) {
        if (m->loss.kind == CT_LOSS_CCE && y_size == 1)
            return CT_FAIL(CT_ERR_SHAPE,
                           "%s: targets are class indices but categorical_crossentropy expects one-hot rows of %lld; "
                           "use loss = sparse_categorical_crossentropy",
                           what, (long long)want);
        return CT_FAIL(CT_ERR_SHAPE, "%s: targets have %lld values per sample, %s with %lld outputs expects %lld", what,
                       (long long)y_size, ct_loss_name(m->loss.kind), (long long)m->out_dim, (long long)want);
    }
    if (m->loss.kind == CT_LOSS_SCCE && num_classes > m->out_dim)
        return CT_FAIL(CT_ERR_SHAPE, "%s: labels go up to %lld but the output layer has %lld units", what,
                       (long long)num_classes - 1, (long long)m->out_dim);
    return CT_OK;
}

ct_status ct_model_check_data(const ct_model *m, const ct_dataset *d, const char *what)
{
    return ct_model_check_shapes(m, &d->x_shape, &d->y_shape, d->num_classes, what);
}

static const float *sample_weights(ct_model *m, const float *y, const float *w, int64_t batch)
{
    if (!m->n_class_weight) return w;
    for (int64_t i = 0; i < batch; i++) {
        int64_t c = (int64_t)y[i * m->y_size];
        if (m->y_size > 1) { /* one-hot: the argmax */
            c = 0;
            for (int64_t k = 1; k < m->y_size; k++)
                if (y[i * m->y_size + k] > y[i * m->y_size + c]) c = k;
        }
        double cw = (c >= 0 && c < m->n_class_weight) ? m->class_weight[c] : 1.0;
        m->bw[i] = (float)((w ? w[i] : 1.0) * cw);
    }
    return m->bw;
}

static void grads_ready(void *ctx, int64_t offset) { ct_grad_sync_ready(ctx, offset); }

ct_status ct_model_set_trainable(ct_model *m, const char *layer, int on)
{
    ct_graph *g = m->graph;
    int64_t before = g->n_trainable;
    CT_TRY(ct_graph_set_trainable(g, layer, on));
    m->cap = 0; /* plan again */
    if (g->n_trainable != before || !m->opt) {
        ct_optimizer *o = NULL;
        CT_TRY(ct_optimizer_create(&m->opt->cfg, g->n_trainable, &o));
        ct_optimizer_destroy(m->opt);
        m->opt = o;
    }
    return ct_model_set_comm(m, m->comm, m->algo, m->fp16, m->bucket_bytes);
}

ct_status ct_model_set_comm(ct_model *m, ct_comm *comm, ct_reduce_algo algo, int fp16, int64_t bucket_bytes)
{
    m->bucket_bytes = bucket_bytes;
    m->comm = comm && comm->size > 1 ? comm : NULL;
    m->algo = algo;
    m->fp16 = fp16;
    ct_grad_sync_destroy(m->sync);
    m->sync = NULL;
    m->graph->grads_ready = NULL;
    if (!m->comm) return CT_OK;
    ct_graph *g = m->graph;
    /* as many buckets as parameters at most: no fixed cap to degrade a large model */
    int n = g->n_segments;
    int64_t *starts = malloc(sizeof(int64_t) * (size_t)(n + 1)), *bounds = malloc(sizeof(int64_t) * (size_t)(n + 2));
    if (!starts || !bounds) {
        free(starts);
        free(bounds);
        return CT_FAIL(CT_ERR_NOMEM, "gradient buckets for %d parameters", n);
    }
    for (int i = 0; i < n; i++) starts[i] = g->segments[i].offset;
    int nb = ct_grad_sync_plan(starts, n, g->n_trainable, bucket_bytes, bounds, n + 1);
    ct_status s = ct_grad_sync_create(m->comm, g->grads, bounds, nb, algo, fp16, 1.0f, &m->sync);
    free(starts);
    free(bounds);
    CT_TRY(s);
    g->grads_ready = grads_ready;
    g->grads_ready_ctx = m->sync;
    return CT_OK;
}

static int world(const ct_model *m) { return m->comm ? m->comm->size : 1; }
static int rank(const ct_model *m) { return m->comm ? m->comm->rank : 0; }

/* Rank r's rows [lo, hi) of a global batch of b rows. */
static void shard_rows(const ct_model *m, int64_t b, int64_t *lo, int64_t *hi)
{
    int p = world(m), r = rank(m);
    *lo = b * r / p;
    *hi = b * (r + 1) / p;
}

/* Waits for the buckets the backward pass launched (all of them on a rank
 * with no rows this step). */
static ct_status sum_gradients(ct_model *m) { return m->sync ? ct_grad_sync_wait(m->sync) : CT_OK; }

/* A step on `local` rows of a global batch of `global` rows starting at
 * global row `row0`: the loss gradient is scaled by 1/global, so the
 * summed gradient is the global batch mean. *loss_sum gets the local
 * sum_i w_i l_i; *penalty the regularization penalty. */
/* See read_test_failure. */
static ct_status injected_failure(const ct_model *m)
{
    if (m->fail_rank < 0 || m->fail_rank != rank(m) || m->fail_step != m->step) return CT_OK;
    return CT_FAIL(CT_ERR_RUNTIME, "injected failure at step %llu (CT_TEST_FAIL_RANK)", (unsigned long long)m->step);
}

/* int32 inputs travel as floats: exact only for integers below 2^24. */
static ct_status check_int_inputs(const ct_model *m, const float *x, int64_t rows)
{
    const ct_graph *g = m->graph;
    for (int k = 0; k < g->n_inputs; k++) {
        const ct_graph_input *in = &g->inputs[k];
        if (in->dtype != CT_INT32) continue;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < in->size; j++) {
                float v = x[r * g->input_size + in->offset + j];
                if (!(v == floorf(v) && fabsf(v) < 16777216.0f))
                    return CT_FAIL(CT_ERR_DATA, "input '%s' is int32 but row %lld holds %g (int32 inputs take integers "
                                   "with |v| < 2^24)", in->name, (long long)r, (double)v);
            }
    }
    return CT_OK;
}

/* Output o's targets for the batch: the flat rows' columns, split out
 * when there are several outputs. */
static const float *output_targets(ct_model *m, int o, const float *y, int64_t batch)
{
    ct_model_output *out = &m->outputs[o];
    if (m->n_outputs == 1 || !out->y_size) return y;
    for (int64_t r = 0; r < batch; r++)
        memcpy(out->y + r * out->y_size, y + r * m->y_size + out->y_offset, sizeof(float) * (size_t)out->y_size);
    return out->y;
}

/* Every output's loss into its dy (grad) and the metrics' sums. Returns
 * sum_i w_i sum_k weight_k loss_ik in *loss_sum. */
static ct_status outputs_loss(ct_model *m, const float *y, const float *w, int64_t batch, int grad, float grad_scale,
                              double *loss_sum)
{
    ct_graph *g = m->graph;
    ct_status st = CT_OK;
    double total = 0;
    const float *sw = sample_weights(m, y, w, batch);
    for (int o = 0; o < m->n_outputs; o++) {
        ct_model_output *out = &m->outputs[o];
        ct_node *n = &g->nodes[out->node];
        const float *t = output_targets(m, o, y, batch);
        if (out->has_loss) {
            ct_loss l = out->loss;
            if (out->fused) l.from_logits = 1;
            double part = ct_loss_compute_positions(&l, out->fused ? n->z : n->y, t, sw, batch, out->positions, out->d,
                                                    grad ? n->dy : NULL, (float)(grad_scale * out->weight),
                                                    m->per_sample, &st);
            if (st != CT_OK) {
                ct_error_prefix("output '%s': ", out->name);
                return st;
            }
            total += out->weight * part;
            if (out->loss_metric >= 0) {
                /* Keras's SUM_OVER_BATCH_SIZE: divided by samples, not by weights */
                m->metrics[out->loss_metric].sum += part;
                m->metrics[out->loss_metric].count += (double)batch;
            }
        } else if (grad && n->dy) {
            memset(n->dy, 0, sizeof(float) * (size_t)(batch * n->out_size)); /* no loss: no gradient from here */
        }
        for (int k = 0; k < m->n_metrics; k++)
            if (m->metric_output[k] == o)
                ct_metric_update_positions(&m->metrics[k], n->y, t, NULL, batch, out->positions, out->d);
    }
    *loss_sum = total;
    return CT_OK;
}

static int dz_mask(const ct_model *m)
{
    int mask = 0;
    for (int o = 0; o < m->n_outputs; o++)
        if (m->outputs[o].fused) mask |= 1 << o;
    return mask;
}

ct_status ct_model_forward(ct_model *m, const float *x, int64_t batch, int training)
{
    if (batch < 1 || batch > m->cap || batch > m->graph->batch_cap)
        return CT_FAIL(CT_ERR_USAGE, "a batch of %lld rows on a model planned for %lld (ct_model_plan)",
                       (long long)batch, (long long)m->cap);
    CT_TRY(check_int_inputs(m, x, batch));
    ct_graph_forward(m->graph, x, batch, training, m->step, m->seed);
    return CT_OK;
}

ct_status ct_model_loss(ct_model *m, const float *y, const float *w, int64_t batch, float grad_scale,
                        double *loss_sum)
{
    return outputs_loss(m, y, w, batch, 1, grad_scale, loss_sum);
}

void ct_model_backward(ct_model *m, int64_t batch, int accumulate)
{
    m->graph->accumulate = accumulate;
    ct_graph_backward(m->graph, batch, dz_mask(m), m->step, m->seed);
    m->graph->accumulate = 0;
}

ct_status ct_model_apply(ct_model *m, double *penalty)
{
    ct_graph *g = m->graph;
    if (m->comm) CT_TRY(ct_comm_allreduce(m->comm, g->grads, g->n_trainable, m->algo, 1.0f));
    *penalty = ct_graph_regularize(g);
    ct_optimizer_step(m->opt, g->values, g->grads, g->segments, g->n_segments, m->lr);
    m->step++;
    return CT_OK;
}

static ct_status shard_step(ct_model *m, const float *x, const float *y, const float *w, int64_t local,
                            int64_t global, int64_t row0, double *loss_sum, double *penalty)
{
    ct_graph *g = m->graph;
    ct_status st = injected_failure(m);
    if (st != CT_OK) return st;
    *loss_sum = 0;
    if (m->sync) ct_grad_sync_start(m->sync);
    if (local > 0 && (st = check_int_inputs(m, x, local)) != CT_OK) {
        if (m->sync) ct_grad_sync_wait(m->sync);
        return st;
    }
    if (local > 0) {
        g->row0 = row0;
        ct_graph_forward(g, x, local, 1, m->step, m->seed);
        st = outputs_loss(m, y, w, local, 1, 1.0f / (float)global, loss_sum);
        if (st != CT_OK) {
            if (m->sync) ct_grad_sync_wait(m->sync); /* let the other ranks' buckets finish */
            return st;
        }
        ct_graph_backward(g, local, dz_mask(m), m->step, m->seed);
    } else {
        memset(g->grads, 0, sizeof(float) * (size_t)g->n_values); /* this rank has no rows in a short last batch */
    }
    CT_TRY(sum_gradients(m));
    *penalty = ct_graph_regularize(g);
    ct_optimizer_step(m->opt, g->values, g->grads, g->segments, g->n_segments, m->lr);
    m->step++;
    return CT_OK;
}

ct_status ct_model_train_step(ct_model *m, const float *x, const float *y, const float *w, int64_t batch,
                              double *loss)
{
    CT_TRY(plan(m, batch));
    double sum, pen;
    CT_TRY(shard_step(m, x, y, w, batch, batch, 0, &sum, &pen));
    *loss = sum / (double)batch + pen;
    return CT_OK;
}

ct_status ct_model_train_global(ct_model *m, const float *x, const float *y, int64_t batch, double *loss)
{
    int64_t lo, hi;
    shard_rows(m, batch, &lo, &hi);
    CT_TRY(plan(m, hi - lo > 0 ? hi - lo : 1));
    double sum, pen;
    CT_TRY(shard_step(m, x + lo * m->graph->input_size, y + lo * m->y_size, NULL, hi - lo, batch, lo, &sum, &pen));
    *loss = (hi > lo ? sum / (double)(hi - lo) : 0) + pen;
    return CT_OK;
}

ct_status ct_model_train_local(ct_model *m, const float *x, const float *y, int64_t rows, int64_t global,
                               double *loss)
{
    int64_t lo, hi;
    shard_rows(m, global, &lo, &hi);
    if (rows != hi - lo)
        return CT_FAIL(CT_ERR_USAGE, "a share of %lld rows of a global batch of %lld on rank %d: expected %lld",
                       (long long)rows, (long long)global, rank(m), (long long)(hi - lo));
    CT_TRY(plan(m, rows > 0 ? rows : 1));
    double sum, pen;
    CT_TRY(shard_step(m, x, y, NULL, rows, global, lo, &sum, &pen));
    *loss = (rows ? sum / (double)rows : 0) + pen;
    return CT_OK;
}

ct_status ct_model_sync_stats(ct_model *m)
{
    ct_graph *g = m->graph;
    if (!m->comm || g->n_values == g->stats_lo) return CT_OK;
    return ct_comm_allreduce(m->comm, g->values + g->stats_lo, g->n_values - g->stats_lo, m->algo,
                             1.0f / (float)world(m));
}

/* Sum (loss, samples, metric sums and counts) over the ranks. */
static ct_status reduce_totals(ct_model *m, double *loss_sum, double *seen, double *votes)
{
    if (!m->comm) return CT_OK;
    double buf[3 + 2 * CT_MAX_METRICS];
    int n = 2 + 2 * m->n_metrics + (votes != NULL);
    buf[0] = *loss_sum;
    buf[1] = *seen;
    for (int k = 0; k < m->n_metrics; k++) {
        buf[2 + 2 * k] = m->metrics[k].sum;
        buf[3 + 2 * k] = m->metrics[k].count;
    }
    if (votes) buf[n - 1] = *votes;
    CT_TRY(ct_comm_allreduce_f64(m->comm, buf, n));
    *loss_sum = buf[0];
    *seen = buf[1];
    for (int k = 0; k < m->n_metrics; k++) {
        m->metrics[k].sum = buf[2 + 2 * k];
        m->metrics[k].count = buf[3 + 2 * k];
    }
    if (votes) *votes = buf[n - 1];
    return CT_OK;
}

/* Adds one batch's loss sum, rows and metric sums, summed over the ranks,
 * to the epoch's running totals (`running`: the metric sums before the
 * batch), so that every rank, its progress bar, its decisions and a
 * checkpoint taken now hold the totals of the whole job, whatever the
 * rank count. */
static ct_status add_batch_totals(ct_model *m, const double *running, double loss_sum, int64_t rows)
{
    double seen = (double)rows;
    m->stop_votes = m->stop_vote && *m->stop_vote;
    CT_TRY(reduce_totals(m, &loss_sum, &seen, &m->stop_votes));
    m->state.loss_sum += loss_sum;
    m->state.seen += (int64_t)seen;
    for (int k = 0; k < m->n_metrics; k++) {
        m->metrics[k].sum += running[2 * k];
        m->metrics[k].count += running[2 * k + 1];
    }
    return CT_OK;
}

static void metric_logs(const ct_model *m, const char *prefix, ct_logs *logs)
{
    char name[128];
    for (int k = 0; k < m->n_metrics; k++) {
        snprintf(name, sizeof name, "%s%s", prefix, m->metrics[k].name);
        ct_logs_set(logs, name, ct_metric_value(&m->metrics[k]));
    }
}

/* Batches [m->state.batch, steps) of one epoch from the pipeline (this
 * rank's shares of the global batches); stops early on *stop. */
static ct_status run_epoch(ct_model *m, ct_stage *train, const ct_fit_hooks *h, ct_logs *logs, int *stop)
{
    ct_train_state *st = &m->state;
    int64_t steps = train->length, n = train->global_samples, bs = train->global_batch;
    int zero_copy = ct_stage_is_prefetch(train);
    if (st->batch == 0) {
        for (int k = 0; k < m->n_metrics; k++) ct_metric_reset(&m->metrics[k]);
        st->loss_sum = 0;
        st->seen = 0;
    }
    CT_TRY(ct_stage_reset(train, (uint64_t)st->epoch));
    if (st->batch > 0) CT_TRY(ct_stage_seek(train, (uint64_t)st->batch));
    while (st->batch < steps && !*stop) {
        int64_t start = st->batch * bs;
        int64_t b = n - start < bs ? n - start : bs, lo, hi;
        shard_rows(m, b, &lo, &hi);
        ct_sample smp = {m->bx, m->by, 0, 0};
        int eof = 0;
        CT_TRY(zero_copy ? ct_prefetch_acquire(train, &smp, &eof) : ct_stage_next(train, &smp, &eof));
        if (eof || smp.rows != hi - lo) {
            if (zero_copy && !eof) ct_prefetch_release(train);
            return CT_FAIL(CT_ERR_RUNTIME, "epoch %d batch %lld: the data pipeline gave %lld rows, expected %lld",
                           st->epoch + 1, (long long)st->batch, eof ? 0LL : (long long)smp.rows, (long long)(hi - lo));
        }
        double sum = 0, pen = 0, running[2 * CT_MAX_METRICS];
        for (int k = 0; k < m->n_metrics; k++) { /* the metrics count this batch alone */
            running[2 * k] = m->metrics[k].sum;
            running[2 * k + 1] = m->metrics[k].count;
            m->metrics[k].sum = m->metrics[k].count = 0;
        }
        ct_status s = shard_step(m, smp.x, smp.y, NULL, hi - lo, b, start + lo, &sum, &pen);
        if (zero_copy) ct_prefetch_release(train);
        CT_TRY(s);
        /* Per sample: its loss plus the penalty, as Keras's batch mean. */
        CT_TRY(add_batch_totals(m, running, sum + pen * (double)(hi - lo), hi - lo));
        st->batch++;
        logs->n = 0;
        ct_logs_set(logs, "loss", st->seen ? st->loss_sum / (double)st->seen : 0);
        metric_logs(m, "", logs);
        if (h && h->batch_end) CT_TRY(h->batch_end(h->ctx, st->epoch, st->batch, steps, logs, stop));
    }
    return CT_OK;
}

static ct_status prepare_fit(ct_model *m, ct_stage *train, const ct_dataset *val)
{
    if (train->global_samples < 1) return CT_FAIL(CT_ERR_DATA, "the training set is empty");
    if (train->global_batch != m->batch_size)
        return CT_FAIL(CT_ERR_USAGE, "the data pipeline batches %lld samples, the model %lld",
                       (long long)train->global_batch, (long long)m->batch_size);
    CT_TRY(ct_model_check_shapes(m, &train->x_shape, &train->y_shape, train->num_classes, "training data"));
    if (val && val->n > 0) CT_TRY(ct_model_check_data(m, val, "validation data"));
    return plan(m, train->batch_rows > 0 ? train->batch_rows : 1);
}

ct_status ct_model_fit_stream(ct_model *m, ct_stage *train, const ct_dataset *val, int epochs, int validation_freq,
                              const ct_fit_hooks *h)
{
    CT_TRY(prepare_fit(m, train, val));
    int64_t steps = train->length;
    if (m->state.batch >= steps) { /* a checkpoint taken after the last batch */
        m->state.epoch++;
        m->state.batch = 0;
    }
    if (validation_freq < 1) validation_freq = 1;
    int stop = 0;
    while (m->state.epoch < epochs && !stop) {
        double t0 = now_s();
        ct_logs logs = {0};
        int epoch = m->state.epoch;
        if (h && h->epoch_begin) CT_TRY(h->epoch_begin(h->ctx, epoch, epochs, steps));
        CT_TRY(run_epoch(m, train, h, &logs, &stop));
        if (!stop && !isfinite(m->state.loss_sum))
            return CT_FAIL(CT_ERR_RUNTIME, "epoch %d: the loss is not finite; lower the learning rate", epoch + 1);
        if (m->state.batch < steps) break; /* stopped inside the epoch */
        /* The running totals are the job's (add_batch_totals); the shards
         * of an epoch must cover every sample exactly once. */
        if (m->state.seen != train->global_samples && !stop)
            return CT_FAIL(CT_ERR_RUNTIME, "epoch %d: the ranks' shards covered %lld samples of %lld", epoch + 1,
                           (long long)m->state.seen, (long long)train->global_samples);
        if (m->comm) CT_TRY(ct_model_sync_stats(m));
        if (val && val->n > 0 && (epoch + 1) % validation_freq == 0) {
            ct_logs vl = {0};
            CT_TRY(ct_model_evaluate(m, val, &vl));
            char name[64];
            for (int i = 0; i < vl.n; i++) {
                snprintf(name, sizeof name, "val_%s", vl.names[i]);
                ct_logs_set(&logs, name, vl.values[i]);
            }
        }
        m->state.epoch++;
        m->state.batch = 0;
        if (h && h->epoch_end) CT_TRY(h->epoch_end(h->ctx, epoch, &logs, now_s() - t0, &stop));
    }
    if (h && h->train_end) CT_TRY(h->train_end(h->ctx, m->state.epoch));
    return CT_OK;
}

ct_status ct_model_fit(ct_model *m, const ct_dataset *train, const ct_dataset *val, int epochs,
                       int validation_freq, int shuffle, const ct_fit_hooks *h)
{
    if (train->n < 1) return CT_FAIL(CT_ERR_DATA, "the training set is empty");
    CT_TRY(ct_model_check_data(m, train, "training data"));
    ct_stage *src = NULL, *pipe = NULL;
    CT_TRY(ct_dataset_stage_open(train, &src));
    ct_pipeline_options o = {.seed = m->seed, .shuffle = shuffle, .batch_size = m->batch_size,
                             .rank = rank(m), .world = world(m)};
    CT_TRY(ct_pipeline_open(src, 0, train->n, 1, &o, &pipe));
    ct_status s = ct_model_fit_stream(m, pipe, val, epochs, validation_freq, h);
    ct_stage_close(pipe);
    return s;
}

/* Each rank evaluates its contiguous share; totals are summed. */
ct_status ct_model_evaluate(ct_model *m, const ct_dataset *d, ct_logs *logs)
{
    CT_TRY(ct_model_check_data(m, d, "evaluation data"));
    int64_t bs = m->batch_size, lo, hi;
    shard_rows(m, d->n, &lo, &hi);
    CT_TRY(plan(m, bs < hi - lo ? bs : (hi - lo ? hi - lo : 1)));
    ct_metric saved[CT_MAX_METRICS];
    memcpy(saved, m->metrics, sizeof saved);
    for (int k = 0; k < m->n_metrics; k++) ct_metric_reset(&m->metrics[k]);
    double sum = 0;
    ct_status st = CT_OK;
    m->graph->row0 = 0;
    for (int64_t start = lo; start < hi; start += bs) {
        int64_t b = hi - start < bs ? hi - start : bs;
        const float *x = d->x + start * d->x_size, *y = d->y + start * d->y_size;
        if ((st = check_int_inputs(m, x, b)) != CT_OK) break;
        ct_graph_forward(m->graph, x, b, 0, m->step, m->seed);
        double part = 0;
        st = outputs_loss(m, y, NULL, b, 0, 1.0f, &part);
        if (st != CT_OK) break;
        sum += part;
    }
    double n = (double)(hi - lo);
    if (st == CT_OK) st = reduce_totals(m, &sum, &n, NULL);
    if (st == CT_OK) {
        logs->n = 0;
        ct_logs_set(logs, "loss", (n > 0 ? sum / n : 0) + ct_graph_penalty(m->graph));
        metric_logs(m, "", logs);
    }
    memcpy(m->metrics, saved, sizeof saved);
    return st;
}

ct_status ct_model_predict(ct_model *m, const float *x, int64_t n, float *out)
{
    int64_t bs = m->batch_size;
    CT_TRY(plan(m, bs < n ? bs : (n ? n : 1)));
    for (int64_t start = 0; start < n; start += bs) {
        int64_t b = n - start < bs ? n - start : bs;
        CT_TRY(check_int_inputs(m, x + start * m->graph->input_size, b));
        ct_graph_forward(m->graph, x + start * m->graph->input_size, b, 0, m->step, m->seed);
        int64_t col = 0;
        for (int o = 0; o < m->n_outputs; o++) {
            const ct_node *nd = ct_graph_output_at(m->graph, o);
            for (int64_t r = 0; r < b; r++)
                memcpy(out + (start + r) * m->pred_size + col, nd->y + r * nd->out_size,
                       sizeof(float) * (size_t)nd->out_size);
            col += nd->out_size;
        }
    }
    return CT_OK;
}
