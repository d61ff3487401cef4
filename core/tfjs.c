/* TensorFlow.js export and import (see tfjs.h).
 *
 * Fidelity notes, from tfjs's converter (write_weights.py, quantization.py,
 * keras_h5_conversion.py) and loaders (tfjs-core io_utils decodeWeights,
 * tfjs-layers container loadWeights):
 *  - one weight group; its bytes in manifest order, cut into
 *    group1-shard<K>of<N>.bin of shard_bytes each, the last one shorter;
 *  - manifest names "<layer>/<weight>" without ":0"; the loader matches
 *    them by name, so order does not matter to it;
 *  - the affine quantization is computed in float64 and rounds half to
 *    even (numpy's round; C's rint in the default rounding mode);
 *    dequantization is q * scale + min in float64, stored as float32;
 *  - tfjs-layers fills missing config keys with its own defaults, so the
 *    topology is the full Keras JSON ctrain writes for .h5 files. */
#include "tfjs.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp16.h"
#include "keras_json.h"
#include "tfjs_internal.h"

void ct_tfjs_options_init(ct_tfjs_options *o)
{
    memset(o, 0, sizeof *o);
    o->shard_bytes = CT_TFJS_DEFAULT_SHARD;
}

static const char *const quant_names[] = {"float32", "uint8", "uint16", "float16"};

ct_status ct_tfjs_quant_parse(const char *s, ct_tfjs_quant *q)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(s, quant_names[k]) == 0) {
            *q = (ct_tfjs_quant)k;
            return CT_OK;
        }
    return CT_FAIL(CT_ERR_USAGE, "quantization '%s': expected uint8, uint16 or float16", s);
}

/* --- tensor lists ----------------------------------------------------------- */

ct_tfjs_tensor *ct_tfjs_tensors_add(ct_tfjs_tensors *l, const char *name, ct_shape shape, const float *f, void *owned)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        ct_tfjs_tensor *t = realloc(l->t, sizeof *t * (size_t)cap);
        if (!t) {
            free(owned);
            return NULL;
        }
        l->t = t;
        l->cap = cap;
    }
    ct_tfjs_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->shape = shape;
    t->f = f;
    t->owned = owned;
    return t;
}

ct_tfjs_tensor *ct_tfjs_tensors_add_ints(ct_tfjs_tensors *l, const char *name, const int64_t *v, int n, int as_vector)
{
    int32_t *d = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!d) return NULL;
    for (int i = 0; i < n; i++) d[i] = (int32_t)v[i];
    ct_shape sh = as_vector ? ct_shape1(n) : (ct_shape){0, {0}};
    ct_tfjs_tensor *t = ct_tfjs_tensors_add(l, name, sh, NULL, d);
    if (t) t->is_int = 1;
    return t;
}

void ct_tfjs_tensors_free(ct_tfjs_tensors *l)
{
    for (int i = 0; i < l->n; i++) free(l->t[i].owned);
    free(l->t);
    memset(l, 0, sizeof *l);
}

/* --- quantization ----------------------------------------------------------- */

void ct_tfjs_quantize_affine(const float *x, int64_t n, int bits16, void *out, double *min, double *scale)
{
    double mn = n ? x[0] : 0, mx = mn, qmax = bits16 ? 65535.0 : 255.0;
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
    }
    double lo = mn, hi = mx, s = 1.0;
    if (mn != mx) {
        s = (mx - mn) / qmax;
        if (mn <= 0 && 0 <= mx) {
            double zp = rint(-mn / s);
            lo = -zp * s;
            hi = qmax * s + lo;
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double q = 0;
        if (mn != mx) {
            double v = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
            q = rint((v - lo) / s);
            q = q < 0 ? 0 : q > qmax ? qmax : q;
        }
        if (bits16) ((uint16_t *)out)[i] = (uint16_t)q;
        else ((uint8_t *)out)[i] = (uint8_t)q;
    }
    *min = lo;
    *scale = s;
}

/* --- writing weights -------------------------------------------------------- */

static int wants_quant(const ct_tfjs_options *o, const ct_tfjs_tensor *t)
{
    if (o->quant == CT_TFJS_FLOAT32 || t->is_int) return 0;
    if (o->n_quant_names == 0) return 1;
    for (int k = 0; k < o->n_quant_names; k++)
        if (fnmatch(o->quant_names[k], t->name, 0) == 0) return 1;
    return 0;
}

static ct_status check_patterns(const ct_tfjs_options *o, const ct_tfjs_tensors *w)
{
    for (int k = 0; k < o->n_quant_names; k++) {
        int hit = 0;
        for (int i = 0; i < w->n && !hit; i++) hit = !w->t[i].is_int && fnmatch(o->quant_names[k], w->t[i].name, 0) == 0;
        if (!hit) {
            char list[1024] = "";
            for (int i = 0; i < w->n && strlen(list) < 900; i++)
                if (!w->t[i].is_int) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", *list ? ", " : "", w->t[i].name);
            return CT_FAIL(CT_ERR_USAGE, "--quantize: '%s' matches no float32 weight; the weights are %s",
                           o->quant_names[k], list);
        }
    }
    return CT_OK;
}

static int elem_bytes(const ct_tfjs_options *o, const ct_tfjs_tensor *t)
{
    if (!wants_quant(o, t)) return 4;
    return o->quant == CT_TFJS_UINT8 ? 1 : 2;
}

static int64_t stream_bytes(const ct_tfjs_options *o, const ct_tfjs_tensors *w)
{
    int64_t total = 0;
    for (int i = 0; i < w->n; i++) total += ct_shape_numel(&w->t[i].shape) * elem_bytes(o, &w->t[i]);
    return total;
}

/* Encode every tensor into buf (stream_bytes long) and write the manifest
 * entries ("weights": [...]) into j. */
static ct_status encode(const ct_tfjs_options *o, const ct_tfjs_tensors *w, uint8_t *buf, ct_json *j)
{
    int64_t at = 0;
    ct_json_key(j, "weights");
    ct_json_arr(j);
    for (int i = 0; i < w->n; i++) {
        const ct_tfjs_tensor *t = &w->t[i];
        int64_t n = ct_shape_numel(&t->shape);
        ct_json_obj(j);
        ct_json_kstr(j, "name", t->name);
        ct_json_kints(j, "shape", t->shape.dims, t->shape.rank);
        ct_json_kstr(j, "dtype", t->is_int ? "int32" : "float32");
        const void *src = t->is_int ? t->owned : (const void *)t->f;
        if (!wants_quant(o, t)) {
            memcpy(buf + at, src, (size_t)n * 4); /* little-endian hosts, as the format */
        } else {
            ct_json_key(j, "quantization");
            ct_json_obj(j);
            ct_json_kstr(j, "dtype", quant_names[o->quant]);
            if (o->quant == CT_TFJS_FLOAT16) {
                uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
                if (!h) return CT_FAIL(CT_ERR_NOMEM, "float16 weights");
                ct_f16_pack_portable(h, t->f, n);
                memcpy(buf + at, h, (size_t)n * 2); /* may sit at an odd offset */
                free(h);
            } else {
                double mn, sc;
                uint16_t *q = malloc(sizeof(uint16_t) * (size_t)(n ? n : 1));
                if (!q) return CT_FAIL(CT_ERR_NOMEM, "quantized weights");
                ct_tfjs_quantize_affine(t->f, n, o->quant == CT_TFJS_UINT16, q, &mn, &sc);
                memcpy(buf + at, q, (size_t)n * (o->quant == CT_TFJS_UINT16 ? 2 : 1));
                free(q);
                ct_json_knum(j, "min", mn);
                ct_json_knum(j, "scale", sc);
            }
            ct_json_kstr(j, "original_dtype", "float32");
            ct_json_obj_end(j);
        }
        ct_json_obj_end(j);
        at += n * elem_bytes(o, t);
    }
    ct_json_arr_end(j);
    return CT_OK;
}

static ct_status write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return CT_FAIL(CT_ERR_IO, "%s: cannot create (%s)", path, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        remove(path);
        return CT_FAIL(CT_ERR_IO, "%s: write failed", path);
    }
    return CT_OK;
}

/* "weightsManifest": [{"paths": [...], "weights": [...]}], and the shards. */
static ct_status write_weights(ct_tfjs_options *o, const ct_tfjs_tensors *w, ct_json *j)
{
    CT_TRY(check_patterns(o, w));
    int64_t len = stream_bytes(o, w), n_shards = len == 0 ? 1 : (len + o->shard_bytes - 1) / o->shard_bytes;
    uint8_t *buf = malloc((size_t)(len > 0 ? len : 1));
    if (!buf) return CT_FAIL(CT_ERR_NOMEM, "TF.js weights (%lld bytes)", (long long)len);
    ct_json_key(j, "weightsManifest");
    ct_json_arr(j);
    ct_json_obj(j);
    ct_json_key(j, "paths");
    ct_json_arr(j);
    for (int64_t k = 0; k < n_shards; k++) {
        char name[64];
        snprintf(name, sizeof name, "group1-shard%lldof%lld.bin", (long long)k + 1, (long long)n_shards);
        ct_json_str(j, name);
    }
    ct_json_arr_end(j);
    ct_status s = encode(o, w, buf, j);
    ct_json_obj_end(j);
    ct_json_arr_end(j);
    for (int64_t k = 0; s == CT_OK && k < n_shards; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/group1-shard%lldof%lld.bin", o->output_dir, (long long)k + 1, (long long)n_shards);
        int64_t off = k * o->shard_bytes, n = len - off < o->shard_bytes ? len - off : o->shard_bytes;
        s = write_file(path, buf + off, (size_t)n);
    }
    o->n_shards_written = (int)n_shards;
    o->weight_bytes_written = len;
    free(buf);
    return s;
}

/* --- which layers TF.js can load ---------------------------------------------- */

static const char *const tfjs_classes[] = {
    "InputLayer", "Dense", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D",
    "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Dropout",
    "Activation", "Add", "Concatenate", "BatchNormalization", "ZeroPadding2D", "UpSampling2D", "Embedding",
    "LSTM", "GRU", "SimpleRNN", "Multiply", "Average", "Maximum", "Minimum", "LayerNormalization", "Permute",
    "RepeatVector", "Cropping2D", "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "Softmax", "ReLU", "TimeDistributed", "Bidirectional", "Masking", "SpatialDropout1D", NULL};
static const char *const tfjs_activations[] = {"linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu",
                                               "gelu", "swish", "softplus", "hard_sigmoid", "relu6", NULL};

static int in_list(const char *s, const char *const *list)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

/* Walk the Keras JSON ctrain wrote and refuse what tfjs-layers cannot run. */
static ct_status check_tfjs_layers(const char *json)
{
    ct_json_value *root;
    CT_TRY(ct_json_parse(json, strlen(json), "model_config", &root));
    const ct_json_value *layers = ct_json_get_type(ct_json_get(root, "config"), "layers", CT_JSON_ARRAY);
    ct_status s = CT_OK;
    for (size_t i = 0; s == CT_OK && layers && i < layers->len; i++) {
        const ct_json_value *l = layers->items[i], *c = ct_json_get(l, "config");
        const char *cls = ct_json_get_str(l, "class_name"), *name = ct_json_get_str(c, "name");
        if (!in_list(cls, tfjs_classes)) {
            s = CT_FAIL(CT_ERR_USAGE, "layer '%s' (%s): TensorFlow.js has no %s layer, so it cannot load this model",
                        name, cls, cls);
            break;
        }
        static const char *const act_keys[] = {"activation", "recurrent_activation"};
        for (int k = 0; k < 2; k++) {
            const char *a = ct_json_get_str(c, act_keys[k]);
            if (a && !in_list(a, tfjs_activations))
                s = CT_FAIL(CT_ERR_USAGE, "layer '%s' (%s): TensorFlow.js has no activation '%s'", name, cls, a);
        }
        const ct_json_value *ra = ct_json_get(c, "reset_after");
        if (s == CT_OK && cls && strcmp(cls, "GRU") == 0 && ra && ra->type == CT_JSON_BOOL && ra->num != 0)
            s = CT_FAIL(CT_ERR_USAGE,
                        "layer '%s' (GRU): reset_after = true, which TensorFlow.js cannot run (GRUCell does not support "
                        "reset_after); train it with reset_after = false to export it",
                        name);
        const char *interp = ct_json_get_str(c, "interpolation");
        if (s == CT_OK && cls && strcmp(cls, "UpSampling2D") == 0 && interp && strcmp(interp, "nearest") != 0)
            s = CT_FAIL(CT_ERR_USAGE,
                        "layer '%s' (UpSampling2D): interpolation '%s' is computed differently by TensorFlow.js "
                        "(no half-pixel centers); only 'nearest' exports",
                        name, interp);
    }
    ct_json_value_free(root);
    return s;
}

/* --- export ----------------------------------------------------------------- */

/* mkdir -p */
static ct_status make_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return CT_FAIL(CT_ERR_IO, "%s: cannot create the directory (%s)", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return CT_FAIL(CT_ERR_IO, "%s: cannot create the directory (%s)", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return CT_FAIL(CT_ERR_IO, "%s: exists and is not a directory", dir);
    return CT_OK;
}

/* Every parameter of every layer once (a shared layer's weights once). */
static ct_status layer_weights(const ct_graph *g, ct_tfjs_tensors *w)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const ct_layer *l = g->nodes[i].layer;
        int seen = 0;
        for (int p = 0; p < i; p++) seen |= g->nodes[p].layer == l;
        for (int k = 0; !seen && k < l->n_params; k++) {
            char name[2 * CT_NAME_MAX + 8];
            snprintf(name, sizeof name, "%s/%s", l->name, l->params[k].name);
            if (!ct_tfjs_tensors_add(w, name, l->params[k].shape, l->params[k].value, NULL))
                return CT_FAIL(CT_ERR_NOMEM, "weight list");
        }
    }
    return CT_OK;
}

ct_status ct_tfjs_export(const ct_graph *g, const char *model_name, ct_tfjs_options *o)
{
    if (o->shard_bytes < 1) return CT_FAIL(CT_ERR_USAGE, "weight shard size must be >= 1 byte");
    ct_tfjs_tensors w = {0};
    ct_json j;
    ct_json_init(&j);
    char *topology = NULL;
    ct_status s = CT_OK;
    if (!o->graph_model) {
        s = ct_keras_model_json_string(g, model_name, 0, 0, &topology);
        if (s == CT_OK) s = check_tfjs_layers(topology);
        if (s == CT_OK) s = layer_weights(g, &w);
    }
    ct_json_obj(&j);
    ct_json_kstr(&j, "format", o->graph_model ? "graph-model" : "layers-model");
    ct_json_kstr(&j, "generatedBy", "ctrain " CT_VERSION);
    ct_json_kstr(&j, "convertedBy", "ctrain " CT_VERSION);
    ct_json_key(&j, "modelTopology");
    ct_json_obj(&j);
    if (!o->graph_model && s == CT_OK) {
        ct_json_kstr(&j, "keras_version", "2.11.0");
        ct_json_kstr(&j, "backend", "tensorflow");
        ct_json_key(&j, "model_config");
        ct_json_raw(&j, topology);
    } else if (s == CT_OK) {
        ct_json_key(&j, "node");
        ct_json_arr(&j);
        s = ct_tfjs_graph_lower(g, &j, &w);
        ct_json_arr_end(&j);
        ct_json_key(&j, "library");
        ct_json_obj(&j);
        ct_json_obj_end(&j);
        ct_json_key(&j, "versions");
        ct_json_obj(&j);
        ct_json_kint(&j, "producer", 1286);
        ct_json_kint(&j, "minConsumer", 12);
        ct_json_obj_end(&j);
    }
    ct_json_obj_end(&j);
    if (s == CT_OK) s = make_dir(o->output_dir);
    if (s == CT_OK) s = write_weights(o, &w, &j);
    ct_json_obj_end(&j);
    if (s == CT_OK) s = ct_json_finish(&j);
    if (s == CT_OK) {
        char path[4096], tmp[4200];
        snprintf(path, sizeof path, "%s/model.json", o->output_dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        s = write_file(tmp, j.buf, strlen(j.buf));
        if (s == CT_OK && rename(tmp, path) != 0) {
            remove(tmp);
            s = CT_FAIL(CT_ERR_IO, "cannot rename %s to %s", tmp, path);
        }
    }
    free(topology);
    ct_json_free(&j);
    ct_tfjs_tensors_free(&w);
    return s;
}
