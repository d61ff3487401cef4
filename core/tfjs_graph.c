/* The TF.js graph model: a ctrain graph lowered to an inference GraphDef
 * (JSON, as tfjs-converter writes it and tf.loadGraphModel reads it).
 *
 * Each layer becomes the TF ops Keras's layer runs at inference, with the
 * attributes tfjs-converter's op tables read (the op_list JSON files): strides,
 * ksize and dilations as NHWC lists, padding as a base64 string, dtype
 * attributes as DT_FLOAT. Layer settings come from the layer's Keras JSON
 * (the keras_config hooks), weights from the graph. Every weight is a
 * Const node whose value is the manifest entry of the same name.
 * Dropout layers vanish (identity at inference). A BatchNormalization
 * whose only input is a Conv2D, DepthwiseConv2D, SeparableConv2D or Dense
 * without activation and read by nothing else is folded into that layer's
 * kernel and bias (ct_op_fold_affine, the rule ctrain's own inference
 * uses); other BatchNormalizations become Mul + AddV2 with the inference
 * scale and shift. Conv2DTranspose is refused: tfjs's Conv2DBackpropInput
 * needs the batch size fixed in the graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_ops.h"
#include "keras_json.h"
#include "tfjs_internal.h"

#define CT_TF_NAME 160

typedef char tf_name[CT_TF_NAME];

typedef struct lower {
    const ct_graph *g;
    ct_json *j;
    ct_tfjs_tensors *w;
    ct_json_value *model;
    tf_name *out;  /* output tensor of each node */
    int *fold;     /* node i: index of the BatchNormalization folded into it, or -1 */
    int *folded;   /* node i is a folded BatchNormalization */
    int nomem;
} lower;

/* --- GraphDef JSON pieces ---------------------------------------------------- */

static void base64(const char *s, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n && k + 5 < cap; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        out[k++] = tbl[(v >> 18) & 63];
        out[k++] = tbl[(v >> 12) & 63];
        out[k++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[k++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[k] = 0;
}

/* {"name", "op", "input": [...], "attr": {  -- closed by node_end */
static void node_begin(lower *L, const char *name, const char *op, int n_in, const char *const *in)
{
    ct_json *j = L->j;
    ct_json_obj(j);
    ct_json_kstr(j, "name", name);
    ct_json_kstr(j, "op", op);
    ct_json_key(j, "input");
    ct_json_arr(j);
    for (int k = 0; k < n_in; k++) ct_json_str(j, in[k]);
    ct_json_arr_end(j);
    ct_json_key(j, "attr");
    ct_json_obj(j);
}

static void node_end(lower *L)
{
    ct_json_obj_end(L->j);
    ct_json_obj_end(L->j);
}

static void attr_type(lower *L, const char *key, const char *dt)
{
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_kstr(L->j, "type", dt);
    ct_json_obj_end(L->j);
}

static void attr_str(lower *L, const char *key, const char *v)
{
    char b[128];
    base64(v, b, sizeof b);
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_kstr(L->j, "s", b);
    ct_json_obj_end(L->j);
}

static void attr_bool(lower *L, const char *key, int v)
{
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_kbool(L->j, "b", v);
    ct_json_obj_end(L->j);
}

static void attr_float(lower *L, const char *key, double v)
{
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_knum(L->j, "f", v);
    ct_json_obj_end(L->j);
}

static void attr_int(lower *L, const char *key, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_kstr(L->j, "i", b);
    ct_json_obj_end(L->j);
}

/* {"list": {"i": ["1", "2", "2", "1"]}} (int64 lists are strings in proto JSON) */
static void attr_ints(lower *L, const char *key, const int64_t *v, int n)
{
    ct_json_key(L->j, key);
    ct_json_obj(L->j);
    ct_json_key(L->j, "list");
    ct_json_obj(L->j);
    ct_json_key(L->j, "i");
    ct_json_arr(L->j);
    for (int k = 0; k < n; k++) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)v[k]);
        ct_json_str(L->j, b);
    }
    ct_json_arr_end(L->j);
    ct_json_obj_end(L->j);
    ct_json_obj_end(L->j);
}

static void attr_shape(lower *L, const char *key, const ct_shape *s, int batch)
{
    ct_json *j = L->j;
    ct_json_key(j, key);
    ct_json_obj(j);
    ct_json_key(j, "shape");
    ct_json_obj(j);
    ct_json_key(j, "dim");
    ct_json_arr(j);
    for (int d = -batch; d < s->rank; d++) {
        char b[32];
        snprintf(b, sizeof b, "%lld", d < 0 ? -1LL : (long long)s->dims[d]);
        ct_json_obj(j);
        ct_json_kstr(j, "size", b);
        ct_json_obj_end(j);
    }
    ct_json_arr_end(j);
    ct_json_obj_end(j);
    ct_json_obj_end(j);
}

/* A Const node and its manifest tensor. f: float data (owned: freed by the
 * list) or ints (as_ints). */
static void const_node(lower *L, const char *name, const ct_tfjs_tensor *t)
{
    if (!t) {
        L->nomem = 1;
        return;
    }
    const char *dt = t->is_int ? "DT_INT32" : "DT_FLOAT";
    node_begin(L, name, "Const", 0, NULL);
    attr_type(L, "dtype", dt);
    ct_json_key(L->j, "value");
    ct_json_obj(L->j);
    ct_json_key(L->j, "tensor");
    ct_json_obj(L->j);
    ct_json_kstr(L->j, "dtype", dt);
    ct_json_key(L->j, "tensorShape");
    ct_json_obj(L->j);
    if (t->shape.rank) {
        ct_json_key(L->j, "dim");
        ct_json_arr(L->j);
        for (int d = 0; d < t->shape.rank; d++) {
            char b[32];
            snprintf(b, sizeof b, "%lld", (long long)t->shape.dims[d]);
            ct_json_obj(L->j);
            ct_json_kstr(L->j, "size", b);
            ct_json_obj_end(L->j);
        }
        ct_json_arr_end(L->j);
    }
    ct_json_obj_end(L->j);
    ct_json_obj_end(L->j);
    ct_json_obj_end(L->j);
    node_end(L);
}

static void const_floats(lower *L, const char *name, ct_shape shape, const float *f, float *owned)
{
    const_node(L, name, ct_tfjs_tensors_add(L->w, name, shape, f, owned));
}

static void const_ints(lower *L, const char *name, const int64_t *v, int n, int as_vector)
{
    const_node(L, name, ct_tfjs_tensors_add_ints(L->w, name, v, n, as_vector));
}

static void const_scalar(lower *L, const char *name, float v)
{
    float *f = malloc(sizeof *f);
    if (!f) {
        L->nomem = 1;
        return;
    }
    *f = v;
    const_floats(L, name, (ct_shape){0, {0}}, f, f);
}

/* A one-input op on the float tensor `in`: writes its name to out. */
static void unary(lower *L, const char *name, const char *op, const char *in, tf_name out)
{
    node_begin(L, name, op, 1, &in);
    attr_type(L, "T", "DT_FLOAT");
    node_end(L);
    snprintf(out, CT_TF_NAME, "%s", name);
}

static void binary(lower *L, const char *name, const char *op, const char *a, const char *b, tf_name out)
{
    const char *in[2] = {a, b};
    node_begin(L, name, op, 2, in);
    attr_type(L, "T", "DT_FLOAT");
    node_end(L);
    snprintf(out, CT_TF_NAME, "%s", name);
}

/* --- layers ------------------------------------------------------------------ */

static const ct_json_value *layer_config(const lower *L, const char *name)
{
    const ct_json_value *layers = ct_json_get_type(ct_json_get(L->model, "config"), "layers", CT_JSON_ARRAY);
    for (size_t i = 0; layers && i < layers->len; i++) {
        const ct_json_value *c = ct_json_get(layers->items[i], "config");
        const char *n = ct_json_get_str(c, "name");
        if (n && strcmp(n, name) == 0) return c;
    }
    return NULL;
}

/* An [a, b] list from the layer's Keras config as NHWC [1, a, b, 1]. */
static void nhwc(const ct_json_value *c, const char *key, int64_t *v)
{
    const ct_json_value *a = ct_json_get_type(c, key, CT_JSON_ARRAY);
    v[0] = v[3] = 1;
    v[1] = a && a->len > 0 ? (int64_t)a->items[0]->num : 1;
    v[2] = a && a->len > 1 ? (int64_t)a->items[1]->num : v[1];
}

static const char *padding_of(const ct_json_value *c)
{
    const char *p = ct_json_get_str(c, "padding");
    return p && strcmp(p, "same") == 0 ? "SAME" : "VALID";
}

/* The activation ops after `in` (named <layer>/<op>); out gets the result. */
static ct_status activation(lower *L, const ct_layer *l, ct_activation act, const char *in, tf_name out)
{
    static const char *const simple[CT_ACT_COUNT] = {
        [CT_ACT_RELU] = "Relu",     [CT_ACT_SIGMOID] = "Sigmoid", [CT_ACT_TANH] = "Tanh",
        [CT_ACT_SOFTMAX] = "Softmax", [CT_ACT_ELU] = "Elu",       [CT_ACT_SELU] = "Selu",
        [CT_ACT_SOFTPLUS] = "Softplus"};
    char n1[CT_TF_NAME], n2[CT_TF_NAME], n3[CT_TF_NAME];
    tf_name t1, t2, t3;
    if (act == CT_ACT_LINEAR) {
        snprintf(out, CT_TF_NAME, "%s", in);
        return CT_OK;
    }
    if (simple[act]) {
        snprintf(n1, sizeof n1, "%s/%s", l->name, simple[act]);
        if (act == CT_ACT_SOFTMAX) {
            node_begin(L, n1, "Softmax", 1, &in);
            node_end(L);
            snprintf(out, CT_TF_NAME, "%s", n1);
        } else {
            unary(L, n1, simple[act], in, out);
        }
        return CT_OK;
    }
    switch (act) {
    case CT_ACT_SWISH: /* x * sigmoid(x) */
        snprintf(n1, sizeof n1, "%s/swish/Sigmoid", l->name);
        snprintf(n2, sizeof n2, "%s/swish/mul", l->name);
        unary(L, n1, "Sigmoid", in, t1);
        binary(L, n2, "Mul", in, t1, out);
        return CT_OK;
    case CT_ACT_LEAKY_RELU: /* ctrain's alpha 0.2 (ops/activation.c) */
        snprintf(n1, sizeof n1, "%s/LeakyRelu", l->name);
        node_begin(L, n1, "LeakyRelu", 1, &in);
        attr_type(L, "T", "DT_FLOAT");
        attr_float(L, "alpha", 0.2);
        node_end(L);
        snprintf(out, CT_TF_NAME, "%s", n1);
        return CT_OK;
    case CT_ACT_GELU: /* 0.5 x (1 + erf(x / sqrt 2)) */
        snprintf(n1, sizeof n1, "%s/gelu/c", l->name);
        const_scalar(L, n1, (float)M_SQRT1_2);
        snprintf(n2, sizeof n2, "%s/gelu/scaled", l->name);
        binary(L, n2, "Mul", in, n1, t1);
        snprintf(n2, sizeof n2, "%s/gelu/Erf", l->name);
        unary(L, n2, "Erf", t1, t2);
        snprintf(n1, sizeof n1, "%s/gelu/one", l->name);
        const_scalar(L, n1, 1.0f);
        snprintf(n2, sizeof n2, "%s/gelu/add", l->name);
        binary(L, n2, "AddV2", t2, n1, t3);
        snprintf(n1, sizeof n1, "%s/gelu/half", l->name);
        const_scalar(L, n1, 0.5f);
        snprintf(n2, sizeof n2, "%s/gelu/half_x", l->name);
        binary(L, n2, "Mul", in, n1, t1);
        snprintf(n3, sizeof n3, "%s/gelu/mul", l->name);
        binary(L, n3, "Mul", t1, t3, out);
        return CT_OK;
    case CT_ACT_HARD_SIGMOID: /* clip(0.2 x + 0.5, 0, 1), Keras 2.x */
        snprintf(n1, sizeof n1, "%s/hard_sigmoid/a", l->name);
        const_scalar(L, n1, 0.2f);
        snprintf(n2, sizeof n2, "%s/hard_sigmoid/mul", l->name);
        binary(L, n2, "Mul", in, n1, t1);
        snprintf(n1, sizeof n1, "%s/hard_sigmoid/b", l->name);
        const_scalar(L, n1, 0.5f);
        snprintf(n2, sizeof n2, "%s/hard_sigmoid/add", l->name);
        binary(L, n2, "AddV2", t1, n1, t2);
        snprintf(n1, sizeof n1, "%s/hard_sigmoid/zero", l->name);
        const_scalar(L, n1, 0.0f);
        snprintf(n2, sizeof n2, "%s/hard_sigmoid/Maximum", l->name);
        binary(L, n2, "Maximum", t2, n1, t3);
        snprintf(n1, sizeof n1, "%s/hard_sigmoid/one", l->name);
        const_scalar(L, n1, 1.0f);
        snprintf(n2, sizeof n2, "%s/hard_sigmoid/Minimum", l->name);
        binary(L, n2, "Minimum", t3, n1, out);
        return CT_OK;
    default:
        return CT_FAIL(CT_ERR_USAGE, "layer '%s': activation '%s' has no graph-model lowering", l->name,
                       ct_activation_name(act));
    }
}

/* Kernel and bias of node i with a folded BatchNormalization applied;
 * fan values per output channel c. Returns owned copies (or the layer's
 * own arrays when nothing folds: *owned_k/b stay NULL). */
static ct_status kernel_bias(lower *L, int i, int kp, int bp, int64_t c, const float **k, const float **b,
                             float **owned_k, float **owned_b)
{
    const ct_layer *l = L->g->nodes[i].layer;
    *owned_k = *owned_b = NULL;
    *k = l->params[kp].value;
    *b = bp >= 0 ? l->params[bp].value : NULL;
    if (L->fold[i] < 0) return CT_OK;
    const ct_layer *bn = L->g->nodes[L->fold[i]].layer;
    int64_t fan = ct_shape_numel(&l->params[kp].shape) / c;
    float *ko = malloc(sizeof(float) * (size_t)(fan * c)), *bo = malloc(sizeof(float) * (size_t)c),
          *ss = malloc(sizeof(float) * (size_t)(2 * c));
    if (!ko || !bo || !ss) {
        free(ko), free(bo), free(ss);
        return CT_FAIL(CT_ERR_NOMEM, "folded weights of '%s'", l->name);
    }
    bn->type->inference_affine(bn, ss, ss + c);
    ct_op_fold_affine(ko, bo, *k, *b, fan, c, ss, ss + c);
    free(ss);
    *k = *owned_k = ko;
    *b = *owned_b = bo;
    return CT_OK;
}

static int param_index(const ct_layer *l, const char *name)
{
    for (int k = 0; k < l->n_params; k++)
        if (strcmp(l->params[k].name, name) == 0) return k;
    return -1;
}

/* BiasAdd with the (folded) bias, then the activation. */
static ct_status bias_act(lower *L, int i, const char *in, const float *bias, float *owned_b, int64_t c, tf_name out)
{
    const ct_layer *l = L->g->nodes[i].layer;
    tf_name t;
    snprintf(t, sizeof t, "%s", in);
    if (bias) {
        char bn[CT_TF_NAME], an[CT_TF_NAME];
        snprintf(bn, sizeof bn, "%s/bias", l->name);
        const_floats(L, bn, ct_shape1(c), bias, owned_b);
        snprintf(an, sizeof an, "%s/BiasAdd", l->name);
        binary(L, an, "BiasAdd", in, bn, t);
    }
    return activation(L, l, l->act, t, out);
}

static void conv_attrs(lower *L, const ct_json_value *c, int dilations)
{
    int64_t v[4];
    attr_type(L, "T", "DT_FLOAT");
    nhwc(c, "strides", v);
    attr_ints(L, "strides", v, 4);
    attr_str(L, "padding", padding_of(c));
    attr_str(L, "data_format", "NHWC");
    if (dilations) {
        nhwc(c, "dilation_rate", v);
        attr_ints(L, "dilations", v, 4);
    }
}

static ct_status lower_conv(lower *L, int i, const ct_json_value *c, const char *in, tf_name out)
{
    const ct_layer *l = L->g->nodes[i].layer;
    int depthwise = strcmp(l->type->keras_class, "DepthwiseConv2D") == 0;
    int separable = strcmp(l->type->keras_class, "SeparableConv2D") == 0;
    int kp = param_index(l, depthwise || separable ? "depthwise_kernel" : "kernel");
    int pp = separable ? param_index(l, "pointwise_kernel") : -1, bp = param_index(l, "bias");
    if (kp < 0 || (separable && pp < 0)) return CT_FAIL(CT_ERR_RUNTIME, "layer '%s': kernel not found", l->name);
    int64_t oc = l->out_shape.dims[l->out_shape.rank - 1];
    const float *k, *b;
    float *ok, *ob;
    /* The fold goes into the kernel that makes the output channels. */
    CT_TRY(kernel_bias(L, i, separable ? pp : kp, bp, oc, &k, &b, &ok, &ob));
    char kn[CT_TF_NAME], cn[CT_TF_NAME];
    tf_name t;
    const char *ins[2] = {in, kn};
    snprintf(kn, sizeof kn, "%s/%s", l->name, l->params[kp].name);
    const_floats(L, kn, l->params[kp].shape, separable ? l->params[kp].value : k, separable ? NULL : ok);
    snprintf(cn, sizeof cn, "%s/%s", l->name, depthwise || separable ? "depthwise" : "Conv2D");
    node_begin(L, cn, depthwise || separable ? "DepthwiseConv2dNative" : "Conv2D", 2, ins);
    conv_attrs(L, c, 1);
    node_end(L);
    snprintf(t, sizeof t, "%s", cn);
    if (separable) {
        int64_t one[4] = {1, 1, 1, 1};
        snprintf(kn, sizeof kn, "%s/pointwise_kernel", l->name);
        const_floats(L, kn, l->params[pp].shape, k, ok);
        ins[0] = t;
        snprintf(cn, sizeof cn, "%s/pointwise", l->name);
        node_begin(L, cn, "Conv2D", 2, ins);
        attr_type(L, "T", "DT_FLOAT");
        attr_ints(L, "strides", one, 4);
        attr_str(L, "padding", "VALID");
        attr_str(L, "data_format", "NHWC");
        attr_ints(L, "dilations", one, 4);
        node_end(L);
        snprintf(t, sizeof t, "%s", cn);
    }
    return bias_act(L, i, t, b, ob, oc, out);
}

static ct_status lower_dense(lower *L, int i, const char *in, tf_name out)
{
    const ct_layer *l = L->g->nodes[i].layer;
    const ct_shape *is = &l->in_shape[0];
    int kp = param_index(l, "kernel"), bp = param_index(l, "bias");
    int64_t units = l->out_shape.dims[l->out_shape.rank - 1], fin = is->dims[is->rank - 1];
    const float *k, *b;
    float *ok, *ob;
    CT_TRY(kernel_bias(L, i, kp, bp, units, &k, &b, &ok, &ob));
    char kn[CT_TF_NAME], n[CT_TF_NAME];
    tf_name t, x;
    snprintf(x, sizeof x, "%s", in);
    if (is->rank > 1) { /* Dense on the last axis: rows of fin values */
        int64_t two[2] = {-1, fin};
        snprintf(n, sizeof n, "%s/rows", l->name);
        const_ints(L, n, two, 2, 1);
        snprintf(kn, sizeof kn, "%s/Reshape_in", l->name);
        const char *ins[2] = {in, n};
        node_begin(L, kn, "Reshape", 2, ins);
        attr_type(L, "T", "DT_FLOAT");
        node_end(L);
        snprintf(x, sizeof x, "%s", kn);
    }
    snprintf(kn, sizeof kn, "%s/kernel", l->name);
    const_floats(L, kn, l->params[kp].shape, k, ok);
    snprintf(n, sizeof n, "%s/MatMul", l->name);
    const char *ins[2] = {x, kn};
    node_begin(L, n, "MatMul", 2, ins);
    attr_type(L, "T", "DT_FLOAT");
    attr_bool(L, "transpose_a", 0);
    attr_bool(L, "transpose_b", 0);
    node_end(L);
    snprintf(t, sizeof t, "%s", n);
    if (is->rank > 1) {
        int64_t dims[CT_MAX_DIMS + 1];
        dims[0] = -1;
        for (int d = 0; d < l->out_shape.rank; d++) dims[d + 1] = l->out_shape.dims[d];
        snprintf(kn, sizeof kn, "%s/shape", l->name);
        const_ints(L, kn, dims, l->out_shape.rank + 1, 1);
        snprintf(n, sizeof n, "%s/Reshape_out", l->name);
        const char *r[2] = {t, kn};
        node_begin(L, n, "Reshape", 2, r);
        attr_type(L, "T", "DT_FLOAT");
        node_end(L);
        snprintf(t, sizeof t, "%s", n);
    }
    return bias_act(L, i, t, b, ob, units, out);
}

/* Reshape to (-1, out_shape...). */
static void reshape_to(lower *L, const ct_layer *l, const char *in, tf_name out)
{
    int64_t dims[CT_MAX_DIMS + 1];
    dims[0] = -1;
    for (int d = 0; d < l->out_shape.rank; d++) dims[d + 1] = l->out_shape.dims[d];
    char sn[CT_TF_NAME], n[CT_TF_NAME];
    snprintf(sn, sizeof sn, "%s/shape", l->name);
    const_ints(L, sn, dims, l->out_shape.rank + 1, 1);
    snprintf(n, sizeof n, "%s/Reshape", l->name);
    const char *ins[2] = {in, sn};
    node_begin(L, n, "Reshape", 2, ins);
    attr_type(L, "T", "DT_FLOAT");
    attr_type(L, "Tshape", "DT_INT32");
    node_end(L);
    snprintf(out, CT_TF_NAME, "%s", n);
}

static void pool(lower *L, const ct_layer *l, const ct_json_value *c, const char *op, const char *in, tf_name out)
{
    int64_t v[4];
    char n[CT_TF_NAME];
    snprintf(n, sizeof n, "%s/%s", l->name, op);
    node_begin(L, n, op, 1, &in);
    attr_type(L, "T", "DT_FLOAT");
    nhwc(c, "pool_size", v);
    attr_ints(L, "ksize", v, 4);
    nhwc(c, "strides", v);
    attr_ints(L, "strides", v, 4);
    attr_str(L, "padding", padding_of(c));
    attr_str(L, "data_format", "NHWC");
    node_end(L);
    snprintf(out, CT_TF_NAME, "%s", n);
}

/* Pad with paddings (rank + 1) x 2 (the batch axis first). */
static void pad(lower *L, const ct_layer *l, const int64_t *pads, const char *in, tf_name out)
{
    int rows = l->in_shape[0].rank + 1;
    char pn[CT_TF_NAME], n[CT_TF_NAME];
    snprintf(pn, sizeof pn, "%s/paddings", l->name);
    ct_tfjs_tensor *t = ct_tfjs_tensors_add_ints(L->w, pn, pads, 2 * rows, 1);
    if (t) t->shape = ct_shape2(rows, 2);
    const_node(L, pn, t);
    snprintf(n, sizeof n, "%s/Pad", l->name);
    const char *ins[2] = {in, pn};
    node_begin(L, n, "Pad", 2, ins);
    attr_type(L, "T", "DT_FLOAT");
    attr_type(L, "Tpaddings", "DT_INT32");
    node_end(L);
    snprintf(out, CT_TF_NAME, "%s", n);
}

/* The tensor a node input reference names: a Placeholder or a node's output. */
static const char *ref(const lower *L, int in)
{
    return ct_graph_is_input_ref(in) ? L->g->inputs[ct_graph_input_index(in)].name : L->out[in];
}

static ct_status lower_node(lower *L, int i)
{
    const ct_graph *g = L->g;
    const ct_node *node = &g->nodes[i];
    const ct_layer *l = node->layer;
    const char *cls = l->type->keras_class;
    const ct_json_value *c = layer_config(L, l->name);
    const char *in = ref(L, node->in[0]);
    char n[CT_TF_NAME], k[CT_TF_NAME];
    if (!c) return CT_FAIL(CT_ERR_RUNTIME, "layer '%s': no Keras config", l->name);
    if (L->folded[i]) { /* its affine lives in the layer before */
        snprintf(L->out[i], CT_TF_NAME, "%s", in);
        return CT_OK;
    }
    if (!strcmp(cls, "Conv2D") || !strcmp(cls, "DepthwiseConv2D") || !strcmp(cls, "SeparableConv2D"))
        return lower_conv(L, i, c, in, L->out[i]);
    if (!strcmp(cls, "Dense")) return lower_dense(L, i, in, L->out[i]);
    if (!strcmp(cls, "Dropout") || !strcmp(cls, "SpatialDropout2D")) {
        snprintf(L->out[i], CT_TF_NAME, "%s", in);
        return CT_OK;
    }
    if (!strcmp(cls, "Activation")) return activation(L, l, l->act, in, L->out[i]);
    if (!strcmp(cls, "Flatten") || !strcmp(cls, "Reshape")) {
        reshape_to(L, l, in, L->out[i]);
        return CT_OK;
    }
    if (!strcmp(cls, "MaxPooling2D") || !strcmp(cls, "AveragePooling2D")) {
        pool(L, l, c, cls[0] == 'M' ? "MaxPool" : "AvgPool", in, L->out[i]);
        return CT_OK;
    }
    if (!strcmp(cls, "GlobalAveragePooling2D") || !strcmp(cls, "GlobalMaxPooling2D")) {
        int64_t axes[2] = {1, 2};
        const ct_json_value *kd = ct_json_get(c, "keepdims");
        snprintf(k, sizeof k, "%s/axes", l->name);
        const_ints(L, k, axes, 2, 1);
        const char *op = strstr(cls, "Average") ? "Mean" : "Max";
        snprintf(n, sizeof n, "%s/%s", l->name, op);
        const char *ins[2] = {in, k};
        node_begin(L, n, op, 2, ins);
        attr_type(L, "T", "DT_FLOAT");
        attr_type(L, "Tidx", "DT_INT32");
        attr_bool(L, "keep_dims", kd && kd->num != 0);
        node_end(L);
        snprintf(L->out[i], CT_TF_NAME, "%s", n);
        return CT_OK;
    }
    if (!strcmp(cls, "Add")) {
        snprintf(L->out[i], CT_TF_NAME, "%s", in);
        for (int m = 1; m < node->n_in; m++) {
            snprintf(n, sizeof n, m == 1 ? "%s/add" : "%s/add_%d", l->name, m - 1);
            tf_name prev;
            snprintf(prev, sizeof prev, "%s", L->out[i]);
            binary(L, n, "AddV2", prev, ref(L, node->in[m]), L->out[i]);
        }
        return CT_OK;
    }
    if (!strcmp(cls, "Concatenate")) {
        const ct_json_value *ax = ct_json_get(c, "axis");
        int64_t axis = ax ? (int64_t)ax->num : -1;
        snprintf(k, sizeof k, "%s/axis", l->name);
        const_ints(L, k, &axis, 1, 0);
        const char *ins[CT_LAYER_MAX_INPUTS + 1];
        for (int m = 0; m < node->n_in; m++) ins[m] = ref(L, node->in[m]);
        ins[node->n_in] = k;
        snprintf(n, sizeof n, "%s/concat", l->name);
        node_begin(L, n, "ConcatV2", node->n_in + 1, ins);
        attr_type(L, "T", "DT_FLOAT");
        attr_type(L, "Tidx", "DT_INT32");
        attr_int(L, "N", node->n_in);
        node_end(L);
        snprintf(L->out[i], CT_TF_NAME, "%s", n);
        return CT_OK;
    }
    if (!strcmp(cls, "BatchNormalization") && l->type->inference_affine) {
        int64_t ch = l->out_shape.dims[l->out_shape.rank - 1];
        float *ss = malloc(sizeof(float) * (size_t)(2 * ch)), *sh = malloc(sizeof(float) * (size_t)ch);
        if (!ss || !sh) {
            free(ss), free(sh);
            return CT_FAIL(CT_ERR_NOMEM, "batch normalization constants");
        }
        l->type->inference_affine(l, ss, ss + ch);
        memcpy(sh, ss + ch, sizeof(float) * (size_t)ch);
        tf_name t;
        snprintf(k, sizeof k, "%s/scale", l->name);
        const_floats(L, k, ct_shape1(ch), ss, ss);
        snprintf(n, sizeof n, "%s/mul", l->name);
        binary(L, n, "Mul", in, k, t);
        snprintf(k, sizeof k, "%s/shift", l->name);
        const_floats(L, k, ct_shape1(ch), sh, sh);
        snprintf(n, sizeof n, "%s/add", l->name);
        binary(L, n, "AddV2", t, k, L->out[i]);
        return CT_OK;
    }
    if (!strcmp(cls, "ZeroPadding2D") || !strcmp(cls, "ChannelPadding")) {
        int64_t pads[2 * (CT_MAX_DIMS + 1)] = {0};
        int r = l->in_shape[0].rank;
        const ct_json_value *p = ct_json_get_type(c, "padding", CT_JSON_ARRAY);
        if (cls[0] == 'Z' && p && p->len == 2) { /* [[top, bottom], [left, right]] */
            for (int a = 0; a < 2; a++)
                for (int e = 0; e < 2 && p->items[a]->type == CT_JSON_ARRAY && p->items[a]->len == 2; e++)
                    pads[2 * (a + 1) + e] = (int64_t)p->items[a]->items[e]->num;
        } else if (p && p->len == 2) { /* channels: [before, after] on the last axis */
            pads[2 * r] = (int64_t)p->items[0]->num;
            pads[2 * r + 1] = (int64_t)p->items[1]->num;
        }
        pad(L, l, pads, in, L->out[i]);
        return CT_OK;
    }
    if (!strcmp(cls, "UpSampling2D")) {
        const char *interp = ct_json_get_str(c, "interpolation");
        int bilinear = interp && strcmp(interp, "bilinear") == 0;
        int64_t size[2] = {l->out_shape.dims[0], l->out_shape.dims[1]};
        snprintf(k, sizeof k, "%s/size", l->name);
        const_ints(L, k, size, 2, 1);
        const char *op = bilinear ? "ResizeBilinear" : "ResizeNearestNeighbor";
        snprintf(n, sizeof n, "%s/%s", l->name, op);
        const char *ins[2] = {in, k};
        node_begin(L, n, op, 2, ins);
        attr_type(L, "T", "DT_FLOAT");
        attr_bool(L, "align_corners", 0);
        attr_bool(L, "half_pixel_centers", bilinear); /* tf.image.resize, as Keras calls it */
        node_end(L);
        snprintf(L->out[i], CT_TF_NAME, "%s", n);
        return CT_OK;
    }
    return CT_FAIL(CT_ERR_USAGE, "layer '%s' (%s): no TF.js graph-model lowering for %s%s", l->name, cls, cls,
                   !strcmp(cls, "Conv2DTranspose")
                       ? " (tfjs's Conv2DBackpropInput needs a fixed batch size; export as tfjs_layers_model)"
                       : "");
}

/* Node i + 1 (a BatchNormalization) folds into node i: the rule of
 * ctrain's own inference (core/graph.c fuses_next), for the layer kinds
 * whose kernels end in the output channels. */
static int folds_next(const ct_graph *g, int i)
{
    if (i + 1 >= g->n_nodes) return 0;
    const ct_node *a = &g->nodes[i], *b = &g->nodes[i + 1];
    const char *cls = a->layer->type->keras_class;
    int kind = !strcmp(cls, "Conv2D") || !strcmp(cls, "DepthwiseConv2D") || !strcmp(cls, "SeparableConv2D") ||
               !strcmp(cls, "Dense");
    return kind && b->layer->type->inference_affine && a->layer->act == CT_ACT_LINEAR && b->n_in == 1 &&
           b->in[0] == i && a->last_consumer == i + 1 && a->out_index < 0;
}

ct_status ct_tfjs_graph_lower(const ct_graph *g, ct_json *j, ct_tfjs_tensors *w)
{
    lower L = {.g = g, .j = j, .w = w};
    char *json = NULL;
    ct_status s = ct_keras_model_json_string(g, NULL, 0, 0, &json);
    if (s == CT_OK) s = ct_json_parse(json, strlen(json), "model_config", &L.model);
    free(json);
    if (s != CT_OK) return s;
    L.out = calloc((size_t)g->n_nodes, sizeof *L.out);
    L.fold = malloc(sizeof(int) * (size_t)g->n_nodes);
    L.folded = calloc((size_t)g->n_nodes, sizeof(int));
    if (!L.out || !L.fold || !L.folded) s = CT_FAIL(CT_ERR_NOMEM, "graph lowering");
    for (int i = 0; s == CT_OK && i < g->n_nodes; i++) L.fold[i] = -1;
    for (int i = 0; s == CT_OK && i < g->n_nodes; i++)
        if (!L.folded[i] && folds_next(g, i)) {
            L.fold[i] = i + 1;
            L.folded[i + 1] = 1;
        }
    for (int k = 0; s == CT_OK && k < g->n_inputs; k++) { /* a Placeholder per model input, by its name */
        const char *none = NULL;
        node_begin(&L, g->inputs[k].name, "Placeholder", 0, &none);
        attr_type(&L, "dtype", g->inputs[k].dtype == CT_INT32 ? "DT_INT32" : "DT_FLOAT");
        attr_shape(&L, "shape", &g->inputs[k].shape, 1);
        node_end(&L);
    }
    for (int i = 0; s == CT_OK && i < g->n_nodes; i++) {
        for (int p = 0; p < i && s == CT_OK; p++)
            if (g->nodes[p].layer == g->nodes[i].layer)
                s = CT_FAIL(CT_ERR_USAGE,
                            "layer '%s' is applied twice (shared); the graph-model export does not share layers "
                            "(export as tfjs_layers_model)",
                            g->nodes[i].layer->name);
        if (s == CT_OK) s = lower_node(&L, i);
    }
    for (int k = 0; s == CT_OK && k < g->n_outputs; k++) { /* the outputs under fixed names, in order */
        char name[32];
        const char *last = L.out[g->outputs[k]];
        snprintf(name, sizeof name, k ? "Identity_%d" : "Identity", k);
        node_begin(&L, name, "Identity", 1, &last);
        attr_type(&L, "T", "DT_FLOAT");
        node_end(&L);
    }
    if (s == CT_OK && L.nomem) s = CT_FAIL(CT_ERR_NOMEM, "graph-model constants");
    free(L.out);
    free(L.fold);
    free(L.folded);
    ct_json_value_free(L.model);
    return s;
}
