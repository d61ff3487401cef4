/* Graph construction, planning, forward and backward. */
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ops.h"
#include "rng.h"

static uint64_t name_hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (; *a; a++) h = (h ^ (unsigned char)*a) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (; *b; b++) h = (h ^ (unsigned char)*b) * 1099511628211ull;
    return h;
}

static const char *conf_name(const ct_config *cfg) { return cfg->source ? cfg->source : "<config>"; }

static int find_node(const ct_graph *g, int upto, const char *name)
{
    if (strcmp(name, CT_MODEL_INPUT_NAME) == 0) return CT_INPUT_NODE;
    for (int i = 0; i < upto; i++)
        if (strcmp(g->nodes[i].layer->name, name) == 0) return i;
    return -2;
}

static const ct_shape *node_shape(const ct_graph *g, int idx)
{
    return idx == CT_INPUT_NODE ? &g->input_shape : &g->nodes[idx].layer->out_shape;
}

static ct_status make_layer(const ct_config *cfg, const ct_layer_config *lc, ct_layer **out)
{
    const ct_layer_type *t = ct_layer_type_find(lc->type);
    if (!t) return CT_FAIL(CT_ERR_CONFIG, "layer '%s': unknown type '%s'", lc->name, lc->type ? lc->type : "");
    ct_layer *l = calloc(1, t->size);
    if (!l) return CT_FAIL(CT_ERR_NOMEM, "layer '%s'", lc->name);
    l->type = t;
    l->line = lc->line;
    snprintf(l->name, sizeof l->name, "%s", lc->name);
    ct_status s = t->init(l, lc);
    if (s != CT_OK) {
        free(l);
        return s;
    }
    *out = l;
    return CT_OK;
}

static ct_status connect(ct_graph *g, int i, const ct_layer_config *lc)
{
    ct_node *n = &g->nodes[i];
    ct_layer *l = n->layer;
    if (lc->n_inputs == 0) {
        n->n_in = 1;
        n->in[0] = i - 1; /* -1 is the model input */
    } else {
        if (lc->n_inputs > CT_LAYER_MAX_INPUTS)
            return CT_FAIL(CT_ERR_CONFIG, "layer '%s': at most %d inputs", l->name, CT_LAYER_MAX_INPUTS);
        n->n_in = (int)lc->n_inputs;
        for (int k = 0; k < n->n_in; k++) {
            n->in[k] = find_node(g, i, lc->inputs[k]);
            if (n->in[k] == -2)
                return CT_FAIL(CT_ERR_CONFIG, "layer '%s': input '%s' is not a layer defined above it (or 'input')",
                               l->name, lc->inputs[k]);
        }
    }
    if (n->n_in < l->type->min_inputs || n->n_in > l->type->max_inputs)
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': takes %d to %d inputs, got %d", l->type->name, l->name,
                       l->type->min_inputs, l->type->max_inputs, n->n_in);
    l->n_in = n->n_in;
    for (int k = 0; k < n->n_in; k++) l->in_shape[k] = *node_shape(g, n->in[k]);
    return CT_OK;
}

/* Every layer must feed the output; a dangling branch is a config mistake. */
static ct_status check_reachable(const ct_config *cfg, ct_graph *g)
{
    char *used = calloc((size_t)g->n_nodes, 1);
    if (!used) return CT_FAIL(CT_ERR_NOMEM, "graph");
    used[g->n_nodes - 1] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (used[i])
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (g->nodes[i].in[k] >= 0) used[g->nodes[i].in[k]] = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!used[i]) {
            ct_status s = CT_FAIL(CT_ERR_CONFIG, "%s:%d: layer '%s' does not lead to the output layer '%s'",
                                  conf_name(cfg), g->nodes[i].layer->line, g->nodes[i].layer->name,
                                  g->nodes[g->n_nodes - 1].layer->name);
            free(used);
            return s;
        }
    free(used);
    return CT_OK;
}

static ct_status place_params(ct_graph *g, uint64_t seed)
{
    int total = 0;
    for (int i = 0; i < g->n_nodes; i++) total += g->nodes[i].layer->n_params;
    g->params = calloc((size_t)(total ? total : 1), sizeof *g->params);
    g->segments = calloc((size_t)(total ? total : 1), sizeof *g->segments);
    if (!g->params || !g->segments) return CT_FAIL(CT_ERR_NOMEM, "parameter table");
    /* Trainable first, then the rest: [0, n_trainable) is what optimizers see. */
    int64_t off = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->n_nodes; i++) {
            ct_layer *l = g->nodes[i].layer;
            for (int k = 0; k < l->n_params; k++) {
                ct_layer_param *p = &l->params[k];
                if (p->trainable != (pass == 0)) continue;
                ct_param_ref *r = &g->params[g->n_params++];
                r->node = i;
                r->index = k;
                snprintf(r->full_name, sizeof r->full_name, "%s/%s", l->name, p->name);
                p->offset = off;
                if (pass == 0) g->segments[g->n_segments++] = (ct_segment){off, ct_shape_numel(&p->shape)};
                /* 16-float alignment keeps every parameter on a cache line. */
                off += (ct_shape_numel(&p->shape) + 15) / 16 * 16;
            }
            if (pass == 0) g->n_trainable = off;
        }
    g->n_values = off;
    size_t bytes = sizeof(float) * (size_t)(off ? off : 16);
    g->values = aligned_alloc(64, bytes);
    g->grads = aligned_alloc(64, bytes);
    if (!g->values || !g->grads) return CT_FAIL(CT_ERR_NOMEM, "parameter slabs of %lld floats", (long long)off);
    memset(g->values, 0, bytes);
    memset(g->grads, 0, bytes);
    for (int i = 0; i < g->n_params; i++) {
        ct_layer_param *p = &g->nodes[g->params[i].node].layer->params[g->params[i].index];
        p->value = g->values + p->offset;
        p->grad = g->grads + p->offset;
        ct_rng r = ct_rng_make(seed, CT_RNG_INIT, name_hash(g->nodes[g->params[i].node].layer->name, p->name));
        CT_TRY(ct_initializer_fill(&p->init, &p->shape, &r, p->value));
    }
    return CT_OK;
}

/* A layer that can apply its activation itself does so in one pass
 * (Activation: out = act(x)); not at the output, where losses read z. */
static void assign_own_act(ct_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ct_layer *l = g->nodes[i].layer;
        l->own_act = l->type->can_own_act && l->act != CT_ACT_LINEAR && i < g->n_nodes - 1;
    }
}

static void mark_needs_grad(ct_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].last_consumer = i;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0 && g->nodes[g->nodes[i].in[k]].last_consumer < i)
                g->nodes[g->nodes[i].in[k]].last_consumer = i;
    for (int i = 0; i < g->n_nodes; i++) {
        ct_node *n = &g->nodes[i];
        n->param_lo = -1;
        for (int k = 0; k < n->layer->n_params; k++)
            if (n->layer->params[k].trainable && (n->param_lo < 0 || n->layer->params[k].offset < n->param_lo))
                n->param_lo = n->layer->params[k].offset;
        n->needs_grad = n->layer->n_params > 0;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && g->nodes[n->in[k]].needs_grad) n->needs_grad = 1;
    }
}

/* Shapes from huge configured sizes must not overflow the size arithmetic
 * after them (an input of 2^62 x 4 once showed as (None, 4)). */
static ct_status check_sizes(const ct_config *cfg, const ct_layer_config *lc, const ct_layer *l)
{
    if (ct_shape_numel_checked(&l->out_shape, CT_MAX_NUMEL) < 0)
        return CT_FAIL(CT_ERR_SHAPE, "%s:%d: %s '%s': the output of one sample has more than %lld values", conf_name(cfg),
                       lc->line, l->type->name, l->name, (long long)CT_MAX_NUMEL);
    for (int k = 0; k < l->n_params; k++)
        if (ct_shape_numel_checked(&l->params[k].shape, CT_MAX_NUMEL) < 0)
            return CT_FAIL(CT_ERR_SHAPE, "%s:%d: %s '%s': the weight %s has more than %lld values", conf_name(cfg),
                           lc->line, l->type->name, l->name, l->params[k].name, (long long)CT_MAX_NUMEL);
    return CT_OK;
}

ct_status ct_graph_build(const ct_config *cfg, uint64_t seed, ct_graph **out)
{
    ct_status s = CT_OK;
    *out = NULL;
    if (!cfg->model || cfg->model->n_input == 0 || cfg->model->n_input > CT_MAX_DIMS)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [model] needs input = <shape of one sample>", conf_name(cfg));
    if (cfg->n_layers == 0) return CT_FAIL(CT_ERR_CONFIG, "%s: the model has no layers", conf_name(cfg));
    ct_graph *g = calloc(1, sizeof *g);
    /* A/B aid for `ctrain bench --inference`: CT_NO_FUSION=1 keeps conv and BN apart. */
    if (g) g->no_fusion = getenv("CT_NO_FUSION") != NULL;
    if (!g) return CT_FAIL(CT_ERR_NOMEM, "graph");
    g->input_shape = ct_shape_make((int)cfg->model->n_input, cfg->model->input);
    g->input_size = ct_shape_numel(&g->input_shape);
    g->nodes = calloc(cfg->n_layers, sizeof *g->nodes);
    if (!g->nodes) {
        s = CT_FAIL(CT_ERR_NOMEM, "graph");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_layers; i++) {
        const ct_layer_config *lc = cfg->layers[i];
        s = make_layer(cfg, lc, &g->nodes[i].layer);
        if (s != CT_OK) {
            ct_error_prefix("%s:%d: ", conf_name(cfg), lc->line);
            goto fail;
        }
        g->n_nodes++;
        ct_layer *l = g->nodes[i].layer;
        if ((s = connect(g, (int)i, lc)) != CT_OK || (s = l->type->infer(l)) != CT_OK) {
            ct_error_prefix("%s:%d: ", conf_name(cfg), lc->line);
            goto fail;
        }
        if ((s = check_sizes(cfg, lc, l)) != CT_OK) goto fail;
        g->nodes[i].out_size = ct_shape_numel(&l->out_shape);
        if (l->act == CT_ACT_SOFTMAX && l->out_shape.rank < 1) {
            s = CT_FAIL(CT_ERR_SHAPE, "%s:%d: %s '%s': softmax needs an axis", conf_name(cfg), lc->line,
                        l->type->name, l->name);
            goto fail;
        }
        if (g->scratch_per_sample < l->scratch_per_sample) g->scratch_per_sample = l->scratch_per_sample;
    }
    if ((s = check_reachable(cfg, g)) != CT_OK) goto fail;
    if ((s = place_params(g, seed)) != CT_OK) goto fail;
    mark_needs_grad(g);
    assign_own_act(g);
    *out = g;
    return CT_OK;
fail:
    ct_graph_destroy(g);
    return s;
}

void ct_graph_destroy(ct_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        ct_layer *l = g->nodes[i].layer;
        if (l && l->type->destroy) l->type->destroy(l);
        free(l);
    }
    free(g->nodes);
    free(g->params);
    free(g->segments);
    free(g->values);
    free(g->grads);
    free(g->arena);
    free(g);
}

/* y shares z's buffer for linear layers, and for activations whose
 * backward needs only y; the output keeps its logits z apart, since
 * losses read them (softmax/sigmoid with cross-entropy use the logits). */
static int in_place(const ct_graph *g, int i)
{
    ct_activation a = g->nodes[i].layer->act;
    return a == CT_ACT_LINEAR || g->nodes[i].layer->own_act || (i < g->n_nodes - 1 && ct_activation_in_place(a));
}

/* Activations are streamed through every step: on 2 MiB pages (where the
 * kernel gives them on request) the TLB stops being the bottleneck. */
static void *big_alloc(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) / 64 * 64);
    void *p = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
    if (p) madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
    return p;
}

/* Backward visits nodes from the last to the first. Node i's gradient is
 * live from the visit of its last consumer (which starts accumulating
 * into it) to its own visit; nodes whose lives do not overlap share one
 * buffer ("slot"), as a register allocator would. Writes slot[i] (-1 for
 * nodes that need no gradient) and the slot sizes; returns the count. */
static int assign_grad_slots(const ct_graph *g, int *slot, int64_t *slot_size, int *slot_end)
{
    int n = g->n_nodes, n_slots = 0;
    for (int i = 0; i < n; i++) slot[i] = -1;
    /* in order of first use: descending last consumer */
    for (int c = n - 1; c >= 0; c--)
        for (int i = n - 1; i >= 0; i--) {
            const ct_node *nd = &g->nodes[i];
            if (nd->last_consumer != c || !(nd->needs_grad || i == n - 1)) continue;
            int start = n - 1 - c, end = n - 1 - i, best = -1;
            for (int s = 0; s < n_slots; s++)
                if (slot_end[s] < start && (best < 0 || slot_size[s] < slot_size[best])) best = s;
            if (best < 0) {
                best = n_slots++;
                slot_size[best] = 0;
            }
            if (slot_size[best] < nd->out_size) slot_size[best] = nd->out_size;
            slot_end[best] = end;
            slot[i] = best;
        }
    return n_slots;
}

ct_status ct_graph_plan(ct_graph *g, int64_t batch_cap)
{
    if (batch_cap < 1) return CT_FAIL(CT_ERR_USAGE, "batch size must be >= 1");
    int n = g->n_nodes;
    int *slot = malloc(sizeof(int) * (size_t)n * 2);
    int64_t *slot_size = malloc(sizeof(int64_t) * (size_t)n);
    float **slot_ptr = malloc(sizeof(float *) * (size_t)n);
    if (!slot || !slot_size || !slot_ptr) {
        free(slot);
        free(slot_size);
        free(slot_ptr);
        return CT_FAIL(CT_ERR_NOMEM, "gradient plan");
    }
    int n_slots = assign_grad_slots(g, slot, slot_size, slot + n);
    int64_t per_sample = g->scratch_per_sample;
    for (int i = 0; i < n; i++) {
        ct_node *nd = &g->nodes[i];
        per_sample += (in_place(g, i) ? 1 : 2) * nd->out_size + nd->layer->saved_per_sample; /* z (+y) */
    }
    for (int s = 0; s < n_slots; s++) per_sample += slot_size[s];
    free(g->arena);
    size_t bytes = sizeof(float) * (size_t)(per_sample * batch_cap + 16 * (4 * n + n_slots + 1));
    g->arena = big_alloc(bytes);
    if (!g->arena) {
        free(slot);
        free(slot_size);
        free(slot_ptr);
        return CT_FAIL(CT_ERR_NOMEM, "activation buffers for batch %lld", (long long)batch_cap);
    }
    memset(g->arena, 0, bytes);
    float *p = g->arena;
#define TAKE(count) (p += ((count) + 15) / 16 * 16, p - ((count) + 15) / 16 * 16)
    for (int s = 0; s < n_slots; s++) slot_ptr[s] = TAKE(slot_size[s] * batch_cap);
    for (int i = 0; i < n; i++) {
        ct_node *nd = &g->nodes[i];
        nd->z = TAKE(nd->out_size * batch_cap);
        /* y overwrites z when the activation's backward needs only y. */
        nd->y = in_place(g, i) ? nd->z : TAKE(nd->out_size * batch_cap);
        nd->dy = slot[i] >= 0 ? slot_ptr[slot[i]] : NULL;
        nd->saved = nd->layer->saved_per_sample ? TAKE(nd->layer->saved_per_sample * batch_cap) : NULL;
    }
    g->scratch = g->scratch_per_sample ? TAKE(g->scratch_per_sample * batch_cap) : NULL;
#undef TAKE
    free(slot);
    free(slot_size);
    free(slot_ptr);
    g->batch_cap = batch_cap;
    return CT_OK;
}

static void fill_io(ct_graph *g, int i, const float *x, int64_t batch, ct_layer_io *io)
{
    ct_node *n = &g->nodes[i];
    memset(io, 0, sizeof *io);
    io->batch = batch;
    io->n_in = n->n_in;
    for (int k = 0; k < n->n_in; k++) {
        int src = n->in[k];
        io->in[k] = src == CT_INPUT_NODE ? x : g->nodes[src].y;
        io->din[k] = (src >= 0 && g->nodes[src].needs_grad) ? g->nodes[src].dy : NULL;
    }
    io->out = n->z;
    io->dout = n->dy;
    io->saved = n->saved;
    io->scratch = g->scratch;
    io->row0 = g->row0;
}

/* In inference, node i folds node i + 1 into its weights when i + 1 is a
 * per-channel affine (BatchNormalization) reading only i, and i has no
 * activation and no other reader (every node has its own output buffer,
 * so i + 1's output can be written while i's input is read). */
static int fuses_next(const ct_graph *g, int i)
{
    if (g->no_fusion || i + 1 >= g->n_nodes) return 0;
    const ct_node *a = &g->nodes[i], *b = &g->nodes[i + 1];
    return a->layer->type->forward_folded && b->layer->type->inference_affine && a->layer->act == CT_ACT_LINEAR &&
           b->n_in == 1 && b->in[0] == i && a->last_consumer == i + 1;
}

void ct_graph_forward(ct_graph *g, const float *x, int64_t batch, int training, uint64_t step, uint64_t seed)
{
    g->x = x;
    for (int i = 0; i < g->n_nodes; i++) {
        ct_node *n = &g->nodes[i];
        ct_layer_io io;
        fill_io(g, i, x, batch, &io);
        io.training = training;
        io.step = step;
        io.seed = seed;
        if (!training && fuses_next(g, i)) {
            io.out = g->nodes[i + 1].z;
            n->layer->type->forward_folded(n->layer, &io, g->nodes[i + 1].layer);
            n = &g->nodes[++i]; /* the affine's output is written: only its activation is left */
        } else {
            n->layer->type->forward(n->layer, &io);
        }
        if (n->layer->act != CT_ACT_LINEAR && !n->layer->own_act) {
            int64_t cols = n->layer->out_shape.dims[n->layer->out_shape.rank - 1];
            ct_op_activation_fwd(n->layer->act, n->z, n->y, batch * n->out_size / cols, cols);
        }
    }
}

void ct_graph_backward(ct_graph *g, int64_t batch, int output_dz, uint64_t step, uint64_t seed)
{
    memset(g->grads, 0, sizeof(float) * (size_t)g->n_values);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        ct_node *n = &g->nodes[i];
        if (!n->needs_grad) continue;
        /* An input's gradient buffer starts its life here: clear it for
         * the accumulation (it may hold another node's finished gradient). */
        for (int k = 0; k < n->n_in; k++) {
            int src = n->in[k];
            if (src >= 0 && g->nodes[src].needs_grad && g->nodes[src].last_consumer == i)
                memset(g->nodes[src].dy, 0, sizeof(float) * (size_t)(batch * g->nodes[src].out_size));
        }
        if (n->layer->act != CT_ACT_LINEAR && !n->layer->own_act && !(output_dz && i == g->n_nodes - 1)) {
            int64_t cols = n->layer->out_shape.dims[n->layer->out_shape.rank - 1];
            ct_op_activation_bwd(n->layer->act, n->z, n->y, n->dy, n->dy, batch * n->out_size / cols, cols);
        }
        ct_layer_io io;
        fill_io(g, i, g->x, batch, &io);
        io.training = 1;
        io.step = step;
        io.seed = seed;
        n->layer->type->backward(n->layer, &io);
        if (g->grads_ready && n->param_lo >= 0) g->grads_ready(g->grads_ready_ctx, n->param_lo);
    }
}

double ct_graph_regularize(ct_graph *g)
{
    double pen = 0;
    for (int i = 0; i < g->n_params; i++) {
        ct_layer_param *p = &g->nodes[g->params[i].node].layer->params[g->params[i].index];
        if (p->trainable && ct_regularizer_active(&p->reg))
            pen += ct_regularizer_apply(&p->reg, p->value, p->grad, ct_shape_numel(&p->shape));
    }
    return pen;
}

double ct_graph_penalty(const ct_graph *g)
{
    double pen = 0;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = &g->nodes[g->params[i].node].layer->params[g->params[i].index];
        if (!p->trainable || !ct_regularizer_active(&p->reg)) continue;
        for (int64_t k = 0; k < ct_shape_numel(&p->shape); k++)
            pen += p->reg.l1 * (p->value[k] < 0 ? -p->value[k] : p->value[k]) +
                   p->reg.l2 * (double)p->value[k] * p->value[k];
    }
    return pen;
}

const ct_layer_param *ct_graph_param(const ct_graph *g, int i)
{
    return &g->nodes[g->params[i].node].layer->params[g->params[i].index];
}

int64_t ct_layer_count_params(const ct_layer *l)
{
    int64_t n = 0;
    for (int k = 0; k < l->n_params; k++) n += ct_shape_numel(&l->params[k].shape);
    return n;
}

int64_t ct_graph_count_params(const ct_graph *g, int trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = ct_graph_param(g, i);
        if (!trainable_only || p->trainable) n += ct_shape_numel(&p->shape);
    }
    return n;
}
