/* Keras model_config JSON of a graph (see keras_json.h).
 *
 * Fidelity: key names and value spellings follow tf.keras 2.11's
 * get_config() (and, where the two differ, what tfjs-layers 4.22 reads:
 * BatchNormalization's axis as one integer, L1L2 regularizers,
 * VarianceScaling for the LeCun initializers). Every key a layer has is
 * written, defaults included, because tfjs fills missing keys with its own
 * defaults, which are not always Keras's. */
#include "keras_json.h"

#include <stdlib.h>
#include <string.h>

void ct_keras_initializer(ct_json *j, const char *key, const ct_initializer *in)
{
    static const char *const cls[CT_INIT_COUNT] = {
        [CT_INIT_ZEROS] = "Zeros", [CT_INIT_ONES] = "Ones", [CT_INIT_CONSTANT] = "Constant",
        [CT_INIT_RANDOM_NORMAL] = "RandomNormal", [CT_INIT_RANDOM_UNIFORM] = "RandomUniform",
        [CT_INIT_TRUNCATED_NORMAL] = "TruncatedNormal", [CT_INIT_GLOROT_UNIFORM] = "GlorotUniform",
        [CT_INIT_GLOROT_NORMAL] = "GlorotNormal", [CT_INIT_HE_NORMAL] = "HeNormal",
        [CT_INIT_HE_UNIFORM] = "HeUniform", [CT_INIT_LECUN_NORMAL] = "VarianceScaling",
        [CT_INIT_LECUN_UNIFORM] = "VarianceScaling", [CT_INIT_ORTHOGONAL] = "Orthogonal"};
    ct_json_key(j, key);
    ct_json_obj(j);
    ct_json_kstr(j, "class_name", (unsigned)in->kind < CT_INIT_COUNT ? cls[in->kind] : "Zeros");
    ct_json_key(j, "config");
    ct_json_obj(j);
    switch (in->kind) {
    case CT_INIT_ZEROS:
    case CT_INIT_ONES: break;
    case CT_INIT_CONSTANT: ct_json_knum(j, "value", in->value); break;
    case CT_INIT_RANDOM_NORMAL:
    case CT_INIT_TRUNCATED_NORMAL:
        ct_json_knum(j, "mean", in->mean);
        ct_json_knum(j, "stddev", in->stddev);
        ct_json_knull(j, "seed");
        break;
    case CT_INIT_RANDOM_UNIFORM:
        ct_json_knum(j, "minval", in->minval);
        ct_json_knum(j, "maxval", in->maxval);
        ct_json_knull(j, "seed");
        break;
    case CT_INIT_LECUN_NORMAL:
    case CT_INIT_LECUN_UNIFORM:
        ct_json_knum(j, "scale", 1.0);
        ct_json_kstr(j, "mode", "fan_in");
        ct_json_kstr(j, "distribution", in->kind == CT_INIT_LECUN_NORMAL ? "truncated_normal" : "uniform");
        ct_json_knull(j, "seed");
        break;
    case CT_INIT_ORTHOGONAL:
        ct_json_knum(j, "gain", in->gain);
        ct_json_knull(j, "seed");
        break;
    default: ct_json_knull(j, "seed"); break;
    }
    ct_json_obj_end(j);
    ct_json_obj_end(j);
}

void ct_keras_regularizer(ct_json *j, const char *key, const ct_regularizer *r)
{
    if (!r || !ct_regularizer_active(r)) {
        ct_json_knull(j, key);
        return;
    }
    ct_json_key(j, key);
    ct_json_obj(j);
    ct_json_kstr(j, "class_name", "L1L2");
    ct_json_key(j, "config");
    ct_json_obj(j);
    ct_json_knum(j, "l1", r->l1);
    ct_json_knum(j, "l2", r->l2);
    ct_json_obj_end(j);
    ct_json_obj_end(j);
}

void ct_keras_pair(ct_json *j, const char *key, int a, int b)
{
    int64_t v[2] = {a, b};
    ct_json_kints(j, key, v, 2);
}

void ct_keras_kernel_bias(ct_json *j, const ct_layer *l, const ct_kernel_bias *kb, int use_bias)
{
    ct_json_kstr(j, "activation", ct_activation_name(l->act));
    ct_json_kbool(j, "use_bias", use_bias);
    ct_keras_initializer(j, "kernel_initializer", &kb->kinit);
    ct_keras_initializer(j, "bias_initializer", &kb->binit);
    ct_keras_regularizer(j, "kernel_regularizer", &kb->kreg);
    ct_keras_regularizer(j, "bias_regularizer", &kb->breg);
    ct_json_knull(j, "activity_regularizer");
    ct_json_knull(j, "kernel_constraint");
    ct_json_knull(j, "bias_constraint");
}

int ct_keras_last_axis(const ct_layer *l) { return l->in_shape[0].rank; }

/* --- the model -------------------------------------------------------------- */

/* Sequential when every layer is used once, takes one input, and that
 * input is the node before it (the model input for the first). */
static int is_sequential(const ct_graph *g)
{
    if (g->n_inputs != 1 || g->n_outputs != 1 || g->outputs[0] != g->n_nodes - 1) return 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ct_node *n = &g->nodes[i];
        if (n->n_in != 1 || n->in[0] != (i == 0 ? CT_INPUT_NODE : i - 1)) return 0;
        for (int k = 0; k < i; k++)
            if (g->nodes[k].layer == n->layer) return 0;
    }
    return 1;
}

/* Which use of its layer node i is (Keras's node_index). */
static int node_index(const ct_graph *g, int i)
{
    int k = 0;
    for (int p = 0; p < i; p++) k += g->nodes[p].layer == g->nodes[i].layer;
    return k;
}

static int first_use(const ct_graph *g, int i)
{
    for (int p = 0; p < i; p++)
        if (g->nodes[p].layer == g->nodes[i].layer) return 0;
    return 1;
}

static void input_layer(ct_json *j, const ct_graph_input *in, int functional)
{
    ct_json_obj(j);
    ct_json_kstr(j, "class_name", "InputLayer");
    ct_json_key(j, "config");
    ct_json_obj(j);
    ct_json_key(j, "batch_input_shape");
    ct_json_arr(j);
    ct_json_null(j);
    for (int d = 0; d < in->shape.rank; d++) ct_json_int(j, in->shape.dims[d]);
    ct_json_arr_end(j);
    ct_json_kstr(j, "dtype", ct_dtype_name(in->dtype));
    ct_json_kbool(j, "sparse", 0);
    ct_json_kbool(j, "ragged", 0);
    ct_json_kstr(j, "name", in->name);
    ct_json_obj_end(j);
    if (functional) {
        ct_json_kstr(j, "name", in->name);
        ct_json_key(j, "inbound_nodes");
        ct_json_arr(j);
        ct_json_arr_end(j);
    }
    ct_json_obj_end(j);
}

/* [layer name, node index, tensor index, {}] of the value node `src` made. */
static void node_ref(ct_json *j, const ct_graph *g, int src, int with_kwargs)
{
    ct_json_arr(j);
    ct_json_str(j, src < 0 ? g->inputs[ct_graph_input_index(src)].name : g->nodes[src].layer->name);
    ct_json_int(j, src < 0 ? 0 : node_index(g, src));
    ct_json_int(j, 0);
    if (with_kwargs) {
        ct_json_obj(j);
        ct_json_obj_end(j);
    }
    ct_json_arr_end(j);
}

static void layer_json(ct_json *j, const ct_graph *g, int i, int functional)
{
    const ct_layer *l = g->nodes[i].layer;
    ct_json_obj(j);
    ct_json_kstr(j, "class_name", l->type->keras_class);
    ct_json_key(j, "config");
    ct_json_obj(j);
    ct_json_kstr(j, "name", l->name);
    ct_json_kbool(j, "trainable", l->trainable);
    ct_json_kstr(j, "dtype", "float32");
    if (l->type->keras_config) l->type->keras_config(l, j);
    ct_json_obj_end(j);
    if (functional) {
        ct_json_kstr(j, "name", l->name);
        ct_json_key(j, "inbound_nodes");
        ct_json_arr(j);
        for (int u = i; u < g->n_nodes; u++) {
            if (g->nodes[u].layer != l) continue;
            ct_json_arr(j);
            for (int k = 0; k < g->nodes[u].n_in; k++) node_ref(j, g, g->nodes[u].in[k], 1);
            ct_json_arr_end(j);
        }
        ct_json_arr_end(j);
    }
    ct_json_obj_end(j);
}

ct_status ct_keras_model_json(const ct_graph *g, const char *model_name, int with_version, ct_json *j)
{
    int functional = !is_sequential(g);
    ct_json_obj(j);
    ct_json_kstr(j, "class_name", functional ? "Functional" : "Sequential");
    ct_json_key(j, "config");
    ct_json_obj(j);
    ct_json_kstr(j, "name", model_name ? model_name : functional ? "model" : "sequential");
    if (functional) ct_json_kbool(j, "trainable", 1);
    ct_json_key(j, "layers");
    ct_json_arr(j);
    for (int k = 0; k < g->n_inputs; k++) input_layer(j, &g->inputs[k], functional);
    for (int i = 0; i < g->n_nodes; i++)
        if (first_use(g, i)) layer_json(j, g, i, functional);
    ct_json_arr_end(j);
    if (functional) {
        ct_json_key(j, "input_layers");
        ct_json_arr(j);
        for (int k = 0; k < g->n_inputs; k++) node_ref(j, g, CT_INPUT_REF(k), 0);
        ct_json_arr_end(j);
        ct_json_key(j, "output_layers");
        ct_json_arr(j);
        for (int k = 0; k < g->n_outputs; k++) node_ref(j, g, g->outputs[k], 0);
        ct_json_arr_end(j);
    }
    ct_json_obj_end(j);
    if (with_version) {
        ct_json_kstr(j, "keras_version", "2.11.0");
        ct_json_kstr(j, "backend", "tensorflow");
    }
    ct_json_obj_end(j);
    return j->failed ? ct_json_finish(j) : CT_OK;
}

ct_status ct_keras_model_json_string(const ct_graph *g, const char *model_name, int with_version, int pretty,
                                     char **out)
{
    ct_json j;
    ct_json_init(&j);
    j.pretty = pretty;
    *out = NULL;
    ct_status s = ct_keras_model_json(g, model_name, with_version, &j);
    if (s == CT_OK) s = ct_json_finish(&j);
    if (s != CT_OK) {
        ct_json_free(&j);
        return s;
    }
    *out = j.buf; /* ownership moves to the caller */
    return CT_OK;
}
