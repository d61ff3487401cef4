/* Graph construction, planning, forward and backward. */
#include "graph.h"

#include <stdio.h>
#include <stdint.h>
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

const char *ct_dtype_name(ct_dtype t) { return t == CT_INT32 ? "int32" : "float32"; }

int ct_graph_find_input(const ct_graph *g, const char *name)
{
    for (int k = 0; k < g->n_inputs; k++)
        if (strcmp(g->inputs[k].name, name) == 0) return k;
    return -1;
}

int ct_graph_find_node(const ct_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

static int is_input_section(const ct_layer_config *lc) { return !lc->apply && lc->type && strcmp(lc->type, "input") == 0; }

/* What a name in `inputs` refers to among the first `upto` nodes: a node
 * index, CT_INPUT_REF(k), or CT_GRAPH_MAX_IO * -2 when unknown. */
#define NO_REF (-2 * CT_GRAPH_MAX_IO - 2)
static int resolve_ref(const ct_graph *g, int upto, const char *name)
{
    if (g->n_inputs == 1 && strcmp(g->inputs[0].name, CT_MODEL_INPUT_NAME) == 0 && strcmp(name, CT_MODEL_INPUT_NAME) == 0)
        return CT_INPUT_NODE;
    int k = ct_graph_find_input(g, name);
    if (k >= 0) return CT_INPUT_REF(k);
    for (int i = 0; i < upto; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return NO_REF;
}

static const ct_shape *ref_shape(const ct_graph *g, int idx)
{
    return idx < 0 ? &g->inputs[ct_graph_input_index(idx)].shape : &g->nodes[idx].layer->out_shape;
}

static ct_status make_layer(const ct_layer_config *lc, ct_layer **out)
{
    const ct_layer_type *t = ct_layer_type_find(lc->type);
    if (!t) return CT_FAIL(CT_ERR_CONFIG, "layer '%s': unknown type '%s'", lc->name, lc->type ? lc->type : "");
    ct_layer *l = calloc(1, t->size);
    if (!l) return CT_FAIL(CT_ERR_NOMEM, "layer '%s'", lc->name);
    l->type = t;
    l->line = lc->line;
    l->trainable = lc->trainable || !lc->has_trainable;
    snprintf(l->name, sizeof l->name, "%s", lc->name);
    ct_status s = t->init(l, lc);
    if (s != CT_OK) {
        free(l);
        return s;
    }
    *out = l;
    return CT_OK;
}

/* The model inputs: the [model] input, or the type = input sections. */
static ct_status make_inputs(const ct_config *cfg, ct_graph *g)
{
    int n = cfg->model->n_input ? 1 : 0;
    for (size_t i = 0; i < cfg->n_layers; i++) n += is_input_section(cfg->layers[i]);
    if (n < 1 || n > CT_GRAPH_MAX_IO)
        return CT_FAIL(CT_ERR_CONFIG, "%s: a model has 1 to %d inputs, this one %d", conf_name(cfg), CT_GRAPH_MAX_IO, n);
    g->inputs = calloc((size_t)n, sizeof *g->inputs);
    if (!g->inputs) return CT_FAIL(CT_ERR_NOMEM, "model inputs");
    if (cfg->model->n_input) {
        if (cfg->model->n_input > CT_MAX_DIMS)
            return CT_FAIL(CT_ERR_CONFIG, "%s: [model] input has more than %d dimensions", conf_name(cfg), CT_MAX_DIMS);
        ct_graph_input *in = &g->inputs[g->n_inputs++];
        snprintf(in->name, sizeof in->name, "%s", CT_MODEL_INPUT_NAME);
        in->shape = ct_shape_make((int)cfg->model->n_input, cfg->model->input);
    }
    for (size_t i = 0; i < cfg->n_layers; i++) {
        const ct_layer_config *lc = cfg->layers[i];
        if (!is_input_section(lc)) continue;
        ct_graph_input *in = &g->inputs[g->n_inputs++];
        snprintf(in->name, sizeof in->name, "%s", lc->name);
        in->line = lc->line;
        /* read through the input type's key table like any layer */
        ct_layer probe = {.type = ct_layer_type_find("input")};
        snprintf(probe.name, sizeof probe.name, "%s", lc->name);
        int64_t dims[CT_MAX_DIMS];
        int nd;
        const char *dtype;
        ct_status s = probe.type ? CT_OK : CT_FAIL(CT_ERR_RUNTIME, "the input layer type is not registered");
        if (s == CT_OK) s = ct_layer_arg_ints(&probe, lc, "shape", dims, CT_MAX_DIMS, &nd);
        if (s == CT_OK) s = ct_layer_arg_string(&probe, lc, "dtype", &dtype);
        if (s != CT_OK) {
            ct_error_prefix("%s:%d: ", conf_name(cfg), lc->line);
            return s;
        }
        in->shape = ct_shape_make(nd, dims);
        in->dtype = strcmp(dtype, "int32") == 0 ? CT_INT32 : CT_FLOAT32;
    }
    int64_t off = 0;
    for (int k = 0; k < g->n_inputs; k++) {
        if (ct_shape_numel_checked(&g->inputs[k].shape, CT_MAX_NUMEL) < 0)
            return CT_FAIL(CT_ERR_SHAPE, "%s:%d: input '%s': one sample has more than %lld values", conf_name(cfg),
                           g->inputs[k].line, g->inputs[k].name, (long long)CT_MAX_NUMEL);
        g->inputs[k].size = ct_shape_numel(&g->inputs[k].shape);
        g->inputs[k].offset = off;
        off += g->inputs[k].size;
    }
    g->input_size = off;
    g->input_shape = g->inputs[0].shape;
    return CT_OK;
}

/* Node i's inputs from the config: named, or the previous section. */
static ct_status connect(const ct_config *cfg, ct_graph *g, int i, size_t sec, const ct_layer_config *lc)
{
    ct_node *n = &g->nodes[i];
    ct_layer *l = n->layer;
    if (lc->n_inputs == 0) {
        n->n_in = 1;
        const ct_layer_config *prev = sec > 0 ? cfg->layers[sec - 1] : NULL;
        n->in[0] = !prev ? CT_INPUT_NODE : resolve_ref(g, i, prev->name);
        if (n->in[0] == NO_REF) return CT_FAIL(CT_ERR_CONFIG, "layer '%s': no input before it", n->name);
    } else {
        if (lc->n_inputs > CT_LAYER_MAX_INPUTS)
            return CT_FAIL(CT_ERR_CONFIG, "layer '%s': at most %d inputs", n->name, CT_LAYER_MAX_INPUTS);
        n->n_in = (int)lc->n_inputs;
        for (int k = 0; k < n->n_in; k++) {
            n->in[k] = resolve_ref(g, i, lc->inputs[k]);
            if (n->in[k] == NO_REF)
                return CT_FAIL(CT_ERR_CONFIG, "layer '%s': input '%s' is not a model input or a layer defined above it",
                               n->name, lc->inputs[k]);
        }
    }
    if (n->n_in < l->type->min_inputs || n->n_in > l->type->max_inputs)
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s': takes %d to %d inputs, got %d", l->type->name, n->name,
                       l->type->min_inputs, l->type->max_inputs, n->n_in);
    for (int k = 0; k < n->n_in; k++) {
        int src = n->in[k];
        if (src < 0 && g->inputs[ct_graph_input_index(src)].dtype == CT_INT32 && !l->type->int_inputs)
            return CT_FAIL(CT_ERR_CONFIG,
                           "%s '%s': cannot take the int32 input '%s' (int32 inputs hold token ids or category "
                           "codes: feed them to a layer that reads integers, such as an embedding)",
                           l->type->name, n->name, g->inputs[ct_graph_input_index(src)].name);
    }
    if (n->call > 0) { /* a shared layer: the same input shapes at every call */
        char a[64], b[64];
        if (n->n_in != l->n_in)
            return CT_FAIL(CT_ERR_SHAPE, "[%s] applies the shared layer '%s' to %d inputs, [%s] to %d", n->name,
                           l->name, n->n_in, l->name, l->n_in);
        for (int k = 0; k < n->n_in; k++)
            if (!ct_shape_equal(ref_shape(g, n->in[k]), &l->in_shape[k]))
                return CT_FAIL(CT_ERR_SHAPE,
                               "[%s] applies the shared layer '%s' to an input of shape %s, but [%s] applies it to "
                               "%s; a shared layer takes the same shapes at every call",
                               n->name, l->name, ct_shape_str(ref_shape(g, n->in[k]), 0, a, sizeof a), l->name,
                               ct_shape_str(&l->in_shape[k], 0, b, sizeof b));
        return CT_OK;
    }
    l->n_in = n->n_in;
    for (int k = 0; k < n->n_in; k++) l->in_shape[k] = *ref_shape(g, n->in[k]);
    return CT_OK;
}

/* The outputs, and every node leading to one (a dangling branch is a
 * config mistake). */
static ct_status find_outputs(const ct_config *cfg, ct_graph *g)
{
    const Ctrain__ModelConfig *mc = cfg->model;
    if (mc->n_outputs > CT_GRAPH_MAX_IO)
        return CT_FAIL(CT_ERR_CONFIG, "%s: at most %d outputs", conf_name(cfg), CT_GRAPH_MAX_IO);
    for (size_t k = 0; k < mc->n_outputs; k++) {
        int i = ct_graph_find_node(g, mc->outputs[k]);
        if (i < 0) return CT_FAIL(CT_ERR_CONFIG, "%s: [model] outputs: '%s' is not a layer", conf_name(cfg), mc->outputs[k]);
        g->outputs[g->n_outputs++] = i;
    }
    if (g->n_outputs == 0) g->outputs[g->n_outputs++] = g->n_nodes - 1;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].out_index = -1;
    for (int k = 0; k < g->n_outputs; k++) g->nodes[g->outputs[k]].out_index = k;
    char *used = calloc((size_t)g->n_nodes, 1);
    if (!used) return CT_FAIL(CT_ERR_NOMEM, "graph");
    for (int k = 0; k < g->n_outputs; k++) used[g->outputs[k]] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (used[i])
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (g->nodes[i].in[k] >= 0) used[g->nodes[i].in[k]] = 1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!used[i]) {
            char outs[256] = "";
            for (int k = 0; k < g->n_outputs; k++)
                snprintf(outs + strlen(outs), sizeof outs - strlen(outs), "%s'%s'", k ? ", " : "",
                         g->nodes[g->outputs[k]].name);
            ct_status s = CT_FAIL(CT_ERR_CONFIG, "%s:%d: layer '%s' does not lead to the output layer%s %s",
                                  conf_name(cfg), g->nodes[i].line, g->nodes[i].name, g->n_outputs > 1 ? "s" : "",
                                  outs);
            free(used);
            return s;
        }
    free(used);
    return CT_OK;
}

/* Store position class of a parameter: 0 trainable, 1 frozen, 2 statistics. */
static int param_class(const ct_layer *l, const ct_layer_param *p)
{
    if (!l->trainable) return 1;
    return p->trainable ? 0 : 2;
}

/* Lay the parameters out in the store. With `keep` the values move from
 * the old slab to their new offsets (a trainable flag changed); otherwise
 * they are initialised from seed. */
static ct_status layout_params(ct_graph *g, uint64_t seed, int keep);

static ct_status place_params(ct_graph *g, uint64_t seed) { return layout_params(g, seed, 0); }

static ct_status layout_params(ct_graph *g, uint64_t seed, int keep)
{
    float *old_values = keep ? g->values : NULL;
    int64_t *old_off = NULL;
    int total0 = 0;
    for (int i = 0; i < g->n_layers; i++) total0 += g->layers[i]->n_params;
    if (keep) {
        old_off = malloc(sizeof(int64_t) * (size_t)(total0 ? total0 : 1));
        if (!old_off) return CT_FAIL(CT_ERR_NOMEM, "parameter table");
        for (int i = 0, k = 0; i < g->n_layers; i++)
            for (int j = 0; j < g->layers[i]->n_params; j++) old_off[k++] = g->layers[i]->params[j].offset;
        free(g->grads);
        g->values = g->grads = NULL;
    }
    int total = 0;
    for (int i = 0; i < g->n_layers; i++) total += g->layers[i]->n_params;
    free(g->params);
    free(g->segments);
    g->n_params = g->n_segments = 0;
    g->params = calloc((size_t)(total ? total : 1), sizeof *g->params);
    g->segments = calloc((size_t)(total ? total : 1), sizeof *g->segments);
    if (!g->params || !g->segments) return CT_FAIL(CT_ERR_NOMEM, "parameter table");
    /* Trainable first, then frozen, then statistics: [0, n_trainable) is what optimizers see. */
    int64_t off = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < g->n_layers; i++) {
            ct_layer *l = g->layers[i];
            for (int k = 0; k < l->n_params; k++) {
                ct_layer_param *p = &l->params[k];
                if (param_class(l, p) != pass) continue;
                ct_param_ref *r = &g->params[g->n_params++];
                r->node = ct_graph_find_node(g, l->name);
                r->index = k;
                snprintf(r->full_name, sizeof r->full_name, "%s/%s", l->name, p->name);
                p->offset = off;
                if (pass == 0) g->segments[g->n_segments++] = (ct_segment){off, ct_shape_numel(&p->shape)};
                /* 16-float alignment keeps every parameter on a cache line. */
                off += (ct_shape_numel(&p->shape) + 15) / 16 * 16;
            }
        }
        if (pass == 0) g->n_trainable = off;
        if (pass == 1) g->stats_lo = off;
    }
    g->n_values = off;
    size_t bytes = sizeof(float) * (size_t)(off ? off : 16);
    g->values = aligned_alloc(64, bytes);
    g->grads = aligned_alloc(64, bytes);
    if (!g->values || !g->grads) {
        free(old_values);
        free(old_off);
        return CT_FAIL(CT_ERR_NOMEM, "parameter slabs of %lld floats", (long long)off);
    }
    memset(g->values, 0, bytes);
    memset(g->grads, 0, bytes);
    if (keep) {
        for (int i = 0, k = 0; i < g->n_layers; i++)
            for (int j = 0; j < g->layers[i]->n_params; j++, k++) {
                ct_layer_param *p = &g->layers[i]->params[j];
                memcpy(g->values + p->offset, old_values + old_off[k], sizeof(float) * (size_t)ct_shape_numel(&p->shape));
                p->value = g->values + p->offset;
                p->grad = g->grads + p->offset;
            }
        free(old_values);
        free(old_off);
        return CT_OK;
    }
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
 * (Activation: out = act(x)); not at an output, where losses read z. A
 * shared layer owns its activation only when no call is an output. */
static void assign_own_act(ct_graph *g)
{
    for (int i = 0; i < g->n_layers; i++) {
        ct_layer *l = g->layers[i];
        l->own_act = l->type->can_own_act && l->act != CT_ACT_LINEAR;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].out_index >= 0) g->nodes[i].layer->own_act = 0;
}

static int reads_model_input(const ct_node *n)
{
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] < 0) return 1;
    return 0;
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
        int trainable = 0;
        for (int k = 0; k < n->layer->n_params; k++)
            if (param_class(n->layer, &n->layer->params[k]) == 0) trainable = 1;
        /* a shared layer's gradients are final at its first call, the last one backward visits */
        for (int k = 0; n->call == 0 && k < n->layer->n_params; k++)
            if (param_class(n->layer, &n->layer->params[k]) == 0 &&
                (n->param_lo < 0 || n->layer->params[k].offset < n->param_lo))
                n->param_lo = n->layer->params[k].offset;
        n->needs_grad = trainable || (g->input_grads && reads_model_input(n));
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && g->nodes[n->in[k]].needs_grad) n->needs_grad = 1;
    }
}

/* Shapes from huge configured sizes must not overflow the size arithmetic
 * after them (an input of 2^62 x 4 once showed as (None, 4)). */
static ct_status check_sizes(const ct_layer *l)
{
    if (ct_shape_numel_checked(&l->out_shape, CT_MAX_NUMEL) < 0)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': the output of one sample has more than %lld values", l->type->name,
                       l->name, (long long)CT_MAX_NUMEL);
    for (int k = 0; k < l->n_params; k++)
        if (ct_shape_numel_checked(&l->params[k].shape, CT_MAX_NUMEL) < 0)
            return CT_FAIL(CT_ERR_SHAPE, "%s '%s': the weight %s has more than %lld values", l->type->name, l->name,
                           l->params[k].name, (long long)CT_MAX_NUMEL);
    return CT_OK;
}

ct_status ct_graph_set_trainable(ct_graph *g, const char *layer, int on)
{
    ct_layer *l = NULL;
    for (int i = 0; i < g->n_layers; i++)
        if (strcmp(g->layers[i]->name, layer) == 0) l = g->layers[i];
    if (!l) return CT_FAIL(CT_ERR_USAGE, "no layer '%s' to %s", layer, on ? "unfreeze" : "freeze");
    if (l->trainable == (on != 0)) return CT_OK;
    l->trainable = on != 0;
    CT_TRY(layout_params(g, 0, 1));
    mark_needs_grad(g);
    g->batch_cap = 0; /* gradient buffers follow needs_grad: plan again */
    return CT_OK;
}

ct_status ct_graph_set_input_grads(ct_graph *g, int on)
{
    g->input_grads = on != 0;
    mark_needs_grad(g);
    g->batch_cap = 0; /* needs a new plan */
    return CT_OK;
}

/* Keras's masks: where node i's output mask comes from, and the error
 * Keras gives a layer that cannot take the mask it is passed. */
static ct_status plan_mask(ct_graph *g, int i)
{
    ct_node *n = &g->nodes[i];
    const ct_layer *l = n->layer;
    int from = -1;
    for (int k = 0; k < n->n_in && from < 0; k++)
        if (n->in[k] >= 0) from = g->nodes[n->in[k]].mask_from;
    int mode = l->type->mask ? l->type->mask(l) : CT_MASK_REFUSE;
    if (from >= 0 && mode == CT_MASK_REFUSE)
        return CT_FAIL(CT_ERR_CONFIG, "%s '%s' (%s) does not support masking, but was passed an input_mask from '%s' "
                       "(Embedding mask_zero or Masking; set mask_zero = false or pool the sequence first)",
                       l->type->name, l->name, l->type->keras_class, g->nodes[from].name);
    if (mode == CT_MASK_MAKE && l->out_shape.rank < 1)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': a mask needs a time axis", l->type->name, l->name);
    n->mask_from = mode == CT_MASK_MAKE ? i : mode == CT_MASK_PASS && n->n_in > 0 && n->in[0] >= 0 ? g->nodes[n->in[0]].mask_from : -1;
    return CT_OK;
}

static int64_t mask_len(const ct_node *n) { return n->mask_from >= 0 && n->layer->out_shape.rank ? n->layer->out_shape.dims[0] : 0; }

/* Node for section lc (index sec in the config): a new layer, or another
 * call of the layer an apply = names. */
static ct_status add_node(const ct_config *cfg, ct_graph *g, size_t sec, const ct_layer_config *lc)
{
    int i = g->n_nodes;
    ct_node *n = &g->nodes[i];
    snprintf(n->name, sizeof n->name, "%s", lc->name);
    n->line = lc->line;
    if (lc->apply) {
        int j = ct_graph_find_node(g, lc->apply);
        if (j < 0 || g->nodes[j].call != 0)
            return CT_FAIL(CT_ERR_CONFIG, "[%s] apply = %s: not a layer defined above it", lc->name, lc->apply);
        n->layer = g->nodes[j].layer;
        n->call = n->layer->n_calls++;
    } else {
        CT_TRY(make_layer(lc, &n->layer));
        n->layer->n_calls = 1;
        g->layers[g->n_layers++] = n->layer;
    }
    g->n_nodes++;
    ct_layer *l = n->layer;
    CT_TRY(connect(cfg, g, i, sec, lc));
    if (n->call == 0) CT_TRY(l->type->infer(l));
    CT_TRY(check_sizes(l));
    CT_TRY(plan_mask(g, i));
    n->out_size = ct_shape_numel(&l->out_shape);
    if (l->act == CT_ACT_SOFTMAX && l->out_shape.rank < 1)
        return CT_FAIL(CT_ERR_SHAPE, "%s '%s': softmax needs an axis", l->type->name, l->name);
    if (g->scratch_per_sample < l->scratch_per_sample) g->scratch_per_sample = l->scratch_per_sample;
    return CT_OK;
}

ct_status ct_graph_build(const ct_config *cfg, uint64_t seed, ct_graph **out)
{
    ct_status s = CT_OK;
    *out = NULL;
    if (!cfg->model) return CT_FAIL(CT_ERR_CONFIG, "%s: [model] needs input = <shape of one sample>", conf_name(cfg));
    if (cfg->n_layers == 0) return CT_FAIL(CT_ERR_CONFIG, "%s: the model has no layers", conf_name(cfg));
    ct_graph *g = calloc(1, sizeof *g);
    if (!g) return CT_FAIL(CT_ERR_NOMEM, "graph");
    /* A/B aid for `ctrain bench --inference`: CT_NO_FUSION=1 keeps conv and BN apart. */
    g->no_fusion = getenv("CT_NO_FUSION") != NULL;
    g->nodes = calloc(cfg->n_layers, sizeof *g->nodes);
    g->layers = calloc(cfg->n_layers, sizeof *g->layers);
    if (!g->nodes || !g->layers) {
        s = CT_FAIL(CT_ERR_NOMEM, "graph");
        goto fail;
    }
    if ((s = make_inputs(cfg, g)) != CT_OK) goto fail;
    for (size_t i = 0; i < cfg->n_layers; i++) {
        const ct_layer_config *lc = cfg->layers[i];
        if (is_input_section(lc)) continue;
        if ((s = add_node(cfg, g, i, lc)) != CT_OK) {
            ct_error_prefix("%s:%d: ", conf_name(cfg), lc->line);
            goto fail;
        }
    }
    if (g->n_nodes == 0) {
        s = CT_FAIL(CT_ERR_CONFIG, "%s: the model has no layers besides its inputs", conf_name(cfg));
        goto fail;
    }
    if ((s = find_outputs(cfg, g)) != CT_OK) goto fail;
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
    for (int i = 0; i < g->n_layers; i++) {
        ct_layer *l = g->layers[i];
        if (l && l->type->destroy) l->type->destroy(l);
        free(l);
    }
    free(g->layers);
    free(g->nodes);
    free(g->inputs);
    free(g->params);
    free(g->segments);
    free(g->values);
    free(g->grads);
    free(g->arena);
    free(g);
}

/* y shares z's buffer for linear layers, and for activations whose
 * backward needs only y; outputs keep their logits z apart, since losses
 * read them (softmax/sigmoid with cross-entropy use the logits). */
static int in_place(const ct_graph *g, int i)
{
    const ct_node *n = &g->nodes[i];
    ct_activation a = n->layer->act;
    return a == CT_ACT_LINEAR || n->layer->own_act || (n->out_index < 0 && ct_activation_in_place(a));
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

/* Backward visits nodes from the last to the first (step s visits node
 * n - 1 - s). Node i's gradient is live from the visit of its last
 * consumer (which starts accumulating into it; an output's from the
 * start, where the loss writes it) to its own visit; nodes whose lives do
 * not overlap share one buffer ("slot"), as a register allocator would.
 * Writes slot[i] (-1 for nodes that need no gradient) and the slot sizes;
 * returns the count. */
static int assign_grad_slots(const ct_graph *g, int *slot, int64_t *slot_size, int *slot_end)
{
    int n = g->n_nodes, n_slots = 0;
    for (int i = 0; i < n; i++) slot[i] = -1;
    /* in order of first use */
    for (int start = 0; start < n; start++)
        for (int i = n - 1; i >= 0; i--) {
            const ct_node *nd = &g->nodes[i];
            int out = nd->out_index >= 0;
            int first = out ? 0 : n - 1 - nd->last_consumer;
            if (first != start || !(nd->needs_grad || out)) continue;
            int end = n - 1 - i, best = -1;
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
        if (nd->mask_from == i) per_sample += mask_len(nd);
    }
    for (int s = 0; s < n_slots; s++) per_sample += slot_size[s];
    for (int k = 0; k < g->n_inputs; k++)
        per_sample += (g->n_inputs > 1 ? g->inputs[k].size : 0) + (g->input_grads ? g->inputs[k].size : 0);
    /* The new arena is allocated before the old one goes: a failed plan
     * leaves the previous plan (buffers, pointers, batch_cap) whole. */
    int64_t floats;
    float *arena = NULL;
    if (__builtin_mul_overflow(per_sample, batch_cap, &floats) ||
        __builtin_add_overflow(floats, (int64_t)16 * (5 * n + n_slots + 2 * g->n_inputs + 1), &floats) ||
        floats > (int64_t)(SIZE_MAX / sizeof(float)) || !(arena = big_alloc(sizeof(float) * (size_t)floats))) {
        free(slot);
        free(slot_size);
        free(slot_ptr);
        return CT_FAIL(CT_ERR_NOMEM, "activation buffers for batch %lld (%lld floats per sample)", (long long)batch_cap,
                       (long long)per_sample);
    }
    size_t bytes = sizeof(float) * (size_t)floats;
    free(g->arena);
    g->arena = arena;
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
        nd->mask = nd->mask_from == i ? TAKE(mask_len(nd) * batch_cap) : NULL;
    }
    for (int k = 0; k < g->n_inputs; k++) {
        ct_graph_input *in = &g->inputs[k];
        in->split = g->n_inputs > 1 ? TAKE(in->size * batch_cap) : NULL;
        in->dx = g->input_grads ? TAKE(in->size * batch_cap) : NULL;
    }
    g->scratch = g->scratch_per_sample ? TAKE(g->scratch_per_sample * batch_cap) : NULL;
#undef TAKE
    free(slot);
    free(slot_size);
    free(slot_ptr);
    g->batch_cap = batch_cap;
    return CT_OK;
}

void ct_graph_fill_io(ct_graph *g, int i, int64_t batch, ct_layer_io *io)
{
    ct_node *n = &g->nodes[i];
    memset(io, 0, sizeof *io);
    io->batch = batch;
    io->n_in = n->n_in;
    for (int k = 0; k < n->n_in; k++) {
        int src = n->in[k];
        if (src < 0) {
            const ct_graph_input *in = &g->inputs[ct_graph_input_index(src)];
            io->in[k] = in->x;
            io->din[k] = in->dx;
        } else {
            io->in[k] = g->nodes[src].y;
            io->din[k] = g->nodes[src].needs_grad ? g->nodes[src].dy : NULL;
            int m = g->nodes[src].mask_from;
            io->in_mask[k] = m >= 0 ? g->nodes[m].mask : NULL;
        }
    }
    io->out_mask = n->mask_from == i ? n->mask : NULL;
    io->out = n->z;
    io->dout = n->dy;
    io->saved = n->saved;
    io->scratch = g->scratch;
    io->row0 = g->row0;
}

/* In inference, node i folds node i + 1 into its weights when i + 1 is a
 * per-channel affine (BatchNormalization) reading only i, and i has no
 * activation and no other reader and is no output (every node has its own
 * output buffer, so i + 1's output can be written while i's input is
 * read). */
static int fuses_next(const ct_graph *g, int i)
{
    if (g->no_fusion || i + 1 >= g->n_nodes) return 0;
    const ct_node *a = &g->nodes[i], *b = &g->nodes[i + 1];
    return a->layer->type->forward_folded && b->layer->type->inference_affine && a->layer->act == CT_ACT_LINEAR &&
           b->n_in == 1 && b->in[0] == i && a->last_consumer == i + 1 && a->out_index < 0;
}

/* A frozen BatchNormalization runs in inference mode, as in Keras 2.x. */
static int node_training(const ct_node *n, int training)
{
    return training && (n->layer->trainable || !n->layer->type->inference_affine);
}

static void run_forward(ct_graph *g, int64_t batch, int training, uint64_t step, uint64_t seed)
{
    g->x = g->inputs[0].x;
    for (int i = 0; i < g->n_nodes; i++) {
        ct_node *n = &g->nodes[i];
        ct_layer_io io;
        ct_graph_fill_io(g, i, batch, &io);
        io.training = node_training(n, training);
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

void ct_graph_forward(ct_graph *g, const float *x, int64_t batch, int training, uint64_t step, uint64_t seed)
{
    if (g->n_inputs == 1) {
        g->inputs[0].x = x;
    } else {
        for (int k = 0; k < g->n_inputs; k++) {
            ct_graph_input *in = &g->inputs[k];
            for (int64_t r = 0; r < batch; r++)
                memcpy(in->split + r * in->size, x + r * g->input_size + in->offset, sizeof(float) * (size_t)in->size);
            in->x = in->split;
        }
    }
    run_forward(g, batch, training, step, seed);
}

void ct_graph_forward_inputs(ct_graph *g, const float *const *xs, int64_t batch, int training, uint64_t step,
                             uint64_t seed)
{
    for (int k = 0; k < g->n_inputs; k++) g->inputs[k].x = xs[k];
    run_forward(g, batch, training, step, seed);
}

void ct_graph_backward(ct_graph *g, int64_t batch, int output_dz, uint64_t step, uint64_t seed)
{
    if (!g->accumulate) memset(g->grads, 0, sizeof(float) * (size_t)g->n_values);
    for (int k = 0; g->input_grads && k < g->n_inputs; k++)
        memset(g->inputs[k].dx, 0, sizeof(float) * (size_t)(batch * g->inputs[k].size));
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        ct_node *n = &g->nodes[i];
        if (!n->needs_grad) continue;
        /* An input's gradient buffer starts its life here: clear it for
         * the accumulation (it may hold another node's finished gradient).
         * An output's holds the loss gradient already. */
        for (int k = 0; k < n->n_in; k++) {
            int src = n->in[k];
            if (src >= 0 && g->nodes[src].needs_grad && g->nodes[src].last_consumer == i && g->nodes[src].out_index < 0)
                memset(g->nodes[src].dy, 0, sizeof(float) * (size_t)(batch * g->nodes[src].out_size));
        }
        int dz_given = n->out_index >= 0 && ((output_dz >> n->out_index) & 1);
        if (n->layer->act != CT_ACT_LINEAR && !n->layer->own_act && !dz_given) {
            int64_t cols = n->layer->out_shape.dims[n->layer->out_shape.rank - 1];
            ct_op_activation_bwd(n->layer->act, n->z, n->y, n->dy, n->dy, batch * n->out_size / cols, cols);
        }
        ct_layer_io io;
        ct_graph_fill_io(g, i, batch, &io);
        io.training = node_training(n, 1);
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
        if (p->trainable && ct_regularizer_active(&p->reg)) /* frozen layers' penalties count, as in Keras */
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
        if (!trainable_only || p->offset < g->n_trainable) n += ct_shape_numel(&p->shape);
    }
    return n;
}
