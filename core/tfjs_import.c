/* TF.js layers model -> ctrain config and weights (see tfjs.h).
 *
 * The topology (modelTopology.model_config as the converter and ctrain
 * write it, or modelTopology itself as tfjs's model.save writes it) is
 * turned into .conf text, one section per layer, so the ordinary config
 * reader checks it: the Keras class names the ctrain layer type (the
 * registry's keras_class), and each config key the type accepts becomes
 * `key = value` (lists as "a, b", initializers and regularizers as
 * ctrain's specs). Keys ctrain has no use for are accepted only at the
 * values that change nothing (data_format channels_last, constraints
 * null, groups 1, ...); any other is refused naming the layer and key.
 * Both tfjs's camelCase keys and Keras's snake_case are read.
 *
 * Weights: every group's shards concatenated in `paths` order, each entry
 * taking numel * (1, 2 or 4) bytes, dequantized as tfjs does
 * (q * scale + min in float64, to float32; float16 widened exactly), then
 * matched to "<layer>/<param>" (also without a cell scope: "lstm/lstm_cell/
 * kernel" -> "lstm/kernel", as tfjs-layers' loader does). Every model
 * weight must be present; the shard bytes must add up exactly. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "json.h"
#include "layer.h"
#include "tfjs.h"

typedef struct text {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void addf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1) cap *= 2;
        char *b = realloc(t->s, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->s = b;
        t->cap = cap;
    }
}

static ct_status read_all(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return CT_FAIL(CT_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap) break;
        char *nb = realloc(b, cap *= 2);
        if (!nb) free(b);
        b = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return CT_FAIL(CT_ERR_NOMEM, "%s", path);
    if (err) {
        free(b);
        return CT_FAIL(CT_ERR_IO, "%s: read failed", path);
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return CT_OK;
}

/* A config key in Keras's snake_case or tfjs's camelCase. */
static const ct_json_value *get_key(const ct_json_value *c, const char *snake)
{
    const ct_json_value *v = ct_json_get(c, snake);
    if (v) return v;
    char camel[64];
    size_t k = 0;
    for (const char *p = snake; *p && k + 1 < sizeof camel; p++) {
        if (*p == '_' && p[1]) camel[k++] = (char)toupper((unsigned char)*++p);
        else camel[k++] = *p;
    }
    camel[k] = 0;
    return ct_json_get(c, camel);
}

static void to_snake(const char *in, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *p = in; *p && k + 2 < cap; p++) {
        if (isupper((unsigned char)*p)) {
            if (k) out[k++] = '_';
            out[k++] = (char)tolower((unsigned char)*p);
        } else {
            out[k++] = *p;
        }
    }
    out[k] = 0;
}

static void num_text(double v, char *b, size_t n)
{
    if (v == floor(v) && fabs(v) < 1e15) snprintf(b, n, "%lld", (long long)v);
    else snprintf(b, n, "%.9g", v);
}

static double cfg_num(const ct_json_value *c, const char *key, double dflt)
{
    const ct_json_value *v = get_key(c, key);
    return v && v->type == CT_JSON_NUMBER ? v->num : dflt;
}

/* {"class_name": "GlorotUniform", "config": {...}} -> "glorot_uniform" */
static ct_status initializer_spec(const ct_json_value *v, const char *where, char *out, size_t n)
{
    const char *cls = v->type == CT_JSON_STRING ? v->str : ct_json_get_str(v, "class_name");
    const ct_json_value *c = ct_json_get(v, "config");
    if (!cls) return CT_FAIL(CT_ERR_DATA, "%s: initializer without class_name", where);
    char s[64];
    to_snake(cls, s, sizeof s);
    if (!strcmp(s, "le_cun_normal")) snprintf(s, sizeof s, "lecun_normal");
    if (!strcmp(s, "le_cun_uniform")) snprintf(s, sizeof s, "lecun_uniform");
    if (!strcmp(s, "constant")) snprintf(out, n, "constant(%.9g)", cfg_num(c, "value", 0));
    else if (!strcmp(s, "random_normal") || !strcmp(s, "truncated_normal"))
        snprintf(out, n, "%s(mean=%.9g, stddev=%.9g)", s, cfg_num(c, "mean", 0), cfg_num(c, "stddev", 0.05));
    else if (!strcmp(s, "random_uniform"))
        snprintf(out, n, "random_uniform(minval=%.9g, maxval=%.9g)", cfg_num(c, "minval", -0.05), cfg_num(c, "maxval", 0.05));
    else if (!strcmp(s, "orthogonal")) snprintf(out, n, "orthogonal(gain=%.9g)", cfg_num(c, "gain", 1));
    else if (!strcmp(s, "variance_scaling")) {
        double scale = cfg_num(c, "scale", 1);
        const char *mode = ct_json_get_str(c, "mode"), *dist = ct_json_get_str(c, "distribution");
        int uniform = dist && !strcmp(dist, "uniform");
        if (scale == 1 && mode && !strcmp(mode, "fan_avg")) snprintf(out, n, uniform ? "glorot_uniform" : "glorot_normal");
        else if (scale == 2 && mode && !strcmp(mode, "fan_in")) snprintf(out, n, uniform ? "he_uniform" : "he_normal");
        else if (scale == 1 && mode && !strcmp(mode, "fan_in")) snprintf(out, n, uniform ? "lecun_uniform" : "lecun_normal");
        else
            return CT_FAIL(CT_ERR_DATA, "%s: VarianceScaling(scale=%g, mode=%s, distribution=%s) has no ctrain initializer",
                           where, scale, mode ? mode : "?", dist ? dist : "?");
    } else snprintf(out, n, "%s", s);
    return CT_OK;
}

static ct_status regularizer_spec(const ct_json_value *v, const char *where, char *out, size_t n)
{
    const char *cls = ct_json_get_str(v, "class_name");
    const ct_json_value *c = ct_json_get(v, "config");
    if (!cls) return CT_FAIL(CT_ERR_DATA, "%s: regularizer without class_name", where);
    double l1 = cfg_num(c, "l1", 0), l2 = cfg_num(c, "l2", 0);
    if (!strcmp(cls, "L1L2") || !strcmp(cls, "l1_l2")) snprintf(out, n, "l1_l2(l1=%.9g, l2=%.9g)", l1, l2);
    else if (!strcmp(cls, "L1") || !strcmp(cls, "l1")) snprintf(out, n, "l1(%.9g)", l1);
    else if (!strcmp(cls, "L2") || !strcmp(cls, "l2")) snprintf(out, n, "l2(%.9g)", l2);
    else return CT_FAIL(CT_ERR_DATA, "%s: regularizer %s has no ctrain equivalent", where, cls);
    return CT_OK;
}

/* Numbers of a (possibly nested) list, comma-separated. */
static int list_text(const ct_json_value *v, char *out, size_t n, size_t *k)
{
    if (v->type == CT_JSON_NUMBER) {
        char b[40];
        num_text(v->num, b, sizeof b);
        *k += (size_t)snprintf(out + *k, *k < n ? n - *k : 0, "%s%s", *k ? ", " : "", b);
        return *k < n;
    }
    if (v->type != CT_JSON_ARRAY) return 0;
    for (size_t i = 0; i < v->len; i++)
        if (!list_text(v->items[i], out, n, k)) return 0;
    return 1;
}

/* Keys ctrain has no field for, and the values at which they change nothing. */
static int harmless(const char *key, const ct_json_value *v)
{
    static const char *const meta[] = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape",
                                       "input_shape", "batchInputShape", "inputShape", "batch_size", "batchSize",
                                       NULL};
    for (int i = 0; meta[i]; i++)
        if (!strcmp(key, meta[i])) return 1;
    if (v->type == CT_JSON_NULL) return 1;
    if (!strcmp(key, "data_format") || !strcmp(key, "dataFormat"))
        return v->type == CT_JSON_STRING && !strcmp(v->str, "channels_last");
    if (!strcmp(key, "groups")) return v->type == CT_JSON_NUMBER && v->num == 1;
    return 0;
}

/* `key = value` lines for one layer's Keras config. */
static ct_status layer_keys(const ct_layer_type *t, const char *lname, const ct_json_value *c, const char *file,
                            text *out)
{
    for (size_t i = 0; c && c->type == CT_JSON_OBJECT && i < c->len; i++) {
        char key[64], val[512], where[256];
        to_snake(c->keys[i], key, sizeof key);
        const ct_json_value *v = c->items[i];
        snprintf(where, sizeof where, "%s: layer '%s' (%s): %s", file, lname, t->keras_class, key);
        int accepted = 0;
        for (int k = 0; t->keys && t->keys[k].name; k++) accepted |= !strcmp(t->keys[k].name, key);
        if (!strcmp(key, "trainable") && v->type == CT_JSON_BOOL) { /* a base key of every layer */
            if (!v->num) addf(out, "trainable = false\n");
            continue;
        }
        if (!accepted) {
            if (harmless(key, v) || harmless(c->keys[i], v)) continue;
            return CT_FAIL(CT_ERR_DATA, "%s: this key has no ctrain equivalent for %s layers (ctrain takes only %s at "
                                        "its default)", where, t->name, key);
        }
        if (v->type == CT_JSON_NULL) continue;
        size_t k = 0;
        if (strstr(key, "_initializer")) CT_TRY(initializer_spec(v, where, val, sizeof val));
        else if (strstr(key, "_regularizer")) CT_TRY(regularizer_spec(v, where, val, sizeof val));
        else if (v->type == CT_JSON_BOOL) snprintf(val, sizeof val, "%s", v->num ? "true" : "false");
        else if (v->type == CT_JSON_STRING) {
            if (strpbrk(v->str, "\n#;")) return CT_FAIL(CT_ERR_DATA, "%s: value '%s' cannot be a config value", where, v->str);
            snprintf(val, sizeof val, "%s", v->str);
        } else if (!list_text(v, val, sizeof val, &k))
            return CT_FAIL(CT_ERR_DATA, "%s: expected a number or a list of numbers, got %s", where,
                           ct_json_type_name(v->type));
        if (!strcmp(key, "axis") && v->type == CT_JSON_ARRAY && v->len != 1)
            return CT_FAIL(CT_ERR_DATA, "%s: ctrain takes one axis", where);
        if (!strcmp(key, "activation")) {
            char snake[64];
            to_snake(val, snake, sizeof snake); /* tfjs: hardSigmoid */
            snprintf(val, sizeof val, "%s", snake);
        }
        addf(out, "%s = %s\n", key, val);
    }
    return CT_OK;
}

static const ct_layer_type *type_for_class(const char *cls)
{
    for (int i = 0; cls && i < ct_layer_type_count(); i++)
        if (!strcmp(ct_layer_type_at(i)->keras_class, cls)) return ct_layer_type_at(i);
    return NULL;
}

static int is_input_layer(const ct_json_value *l)
{
    const char *cls = ct_json_get_str(l, "class_name");
    return cls && !strcmp(cls, "InputLayer");
}

static const ct_json_value *input_shape_of(const ct_json_value *c)
{
    const ct_json_value *s = get_key(c, "batch_input_shape");
    if (!s) s = get_key(c, "batch_shape");
    return s && s->type == CT_JSON_ARRAY && s->len >= 2 ? s : NULL;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || !strcmp(s, CT_MODEL_INPUT_NAME)) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* The loss, metrics and optimizer of a training config, else defaults
 * from the output activation. */
static void train_section(const ct_json_value *root, const ct_json_value *last_cfg, text *out)
{
    const ct_json_value *tc = ct_json_get(root, "trainingConfig");
    if (!tc) tc = ct_json_get(ct_json_get(root, "modelTopology"), "training_config");
    static const char *const losses[][2] = {
        {"categorical_crossentropy", "categorical_crossentropy"}, {"sparse_categorical_crossentropy", "sparse_categorical_crossentropy"},
        {"binary_crossentropy", "binary_crossentropy"},           {"mean_squared_error", "mse"},
        {"mse", "mse"},                                           {"mean_absolute_error", "mae"},
        {"mae", "mae"}};
    const char *loss = NULL;
    const char *l = ct_json_get_str(tc, "loss");
    char snake[64];
    if (l) {
        to_snake(l, snake, sizeof snake);
        for (size_t k = 0; k < sizeof losses / sizeof losses[0]; k++)
            if (!strcmp(snake, losses[k][0])) loss = losses[k][1];
    }
    if (!loss) {
        const char *act = ct_json_get_str(last_cfg, "activation");
        loss = act && !strcmp(act, "softmax") ? "sparse_categorical_crossentropy"
               : act && !strcmp(act, "sigmoid") ? "binary_crossentropy" : "mse";
    }
    addf(out, "[train]\nloss = %s\n", loss);
    const ct_json_value *metrics = ct_json_get_type(tc, "metrics", CT_JSON_ARRAY);
    for (size_t k = 0; metrics && k < metrics->len; k++)
        if (metrics->items[k]->type == CT_JSON_STRING &&
            (!strcmp(metrics->items[k]->str, "accuracy") || !strcmp(metrics->items[k]->str, "acc"))) {
            addf(out, "metrics = accuracy\n");
            break;
        }
    const ct_json_value *oc = get_key(tc, "optimizer_config");
    const char *ocls = ct_json_get_str(oc, "class_name");
    if (ocls) {
        static const char *const known[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", NULL};
        char o[32];
        size_t k = 0;
        for (; ocls[k] && k + 1 < sizeof o; k++) o[k] = (char)tolower((unsigned char)ocls[k]);
        o[k] = 0;
        for (int m = 0; known[m]; m++)
            if (!strcmp(o, known[m])) {
                addf(out, "optimizer = %s\n", o);
                const ct_json_value *c = ct_json_get(oc, "config");
                double lr = cfg_num(c, "learning_rate", cfg_num(c, "lr", NAN));
                if (isfinite(lr)) addf(out, "learning_rate = %.9g\n", lr);
            }
    }
}

/* The .conf text for the topology. */
static ct_status topology_conf(const ct_json_value *root, const char *file, text *out)
{
    const ct_json_value *top = ct_json_get(root, "modelTopology");
    if (!top) return CT_FAIL(CT_ERR_DATA, "%s: no modelTopology (is this a TF.js layers model?)", file);
    const ct_json_value *mc = ct_json_get(top, "model_config");
    if (mc) top = mc;
    const char *cls = ct_json_get_str(top, "class_name");
    const ct_json_value *cfg = ct_json_get(top, "config");
    if (!cls || (strcmp(cls, "Sequential") && strcmp(cls, "Functional") && strcmp(cls, "Model")))
        return CT_FAIL(CT_ERR_DATA, "%s: modelTopology class_name is '%s', expected Sequential, Functional or Model",
                       file, cls ? cls : "(none)");
    const ct_json_value *layers = cfg && cfg->type == CT_JSON_ARRAY ? cfg : ct_json_get_type(cfg, "layers", CT_JSON_ARRAY);
    if (!layers || layers->len == 0) return CT_FAIL(CT_ERR_DATA, "%s: the model has no layers", file);
    int functional = strcmp(cls, "Sequential") != 0;
    /* input shape */
    const ct_json_value *shape = NULL;
    const char *input_name = CT_MODEL_INPUT_NAME;
    for (size_t i = 0; i < layers->len && !shape; i++) {
        shape = input_shape_of(ct_json_get(layers->items[i], "config"));
        if (shape && is_input_layer(layers->items[i])) input_name = ct_json_get_str(ct_json_get(layers->items[i], "config"), "name");
        if (!functional) break;
    }
    if (!shape) return CT_FAIL(CT_ERR_DATA, "%s: no batch_input_shape on the input layer", file);
    if (functional) {
        const ct_json_value *il = ct_json_get_type(cfg, "input_layers", CT_JSON_ARRAY);
        const ct_json_value *ol = ct_json_get_type(cfg, "output_layers", CT_JSON_ARRAY);
        if (!il || il->len != 1 || !ol || ol->len != 1)
            return CT_FAIL(CT_ERR_DATA, "%s: %s model with %zu inputs and %zu outputs; ctrain imports one of each", file,
                           cls, il ? il->len : 0, ol ? ol->len : 0);
        const ct_json_value *last = layers->items[layers->len - 1];
        const char *out_name = ol->items[0]->type == CT_JSON_ARRAY && ol->items[0]->len ? ol->items[0]->items[0]->str : NULL;
        const char *last_name = ct_json_get_str(last, "name");
        if (!out_name || !last_name || strcmp(out_name, last_name))
            return CT_FAIL(CT_ERR_DATA, "%s: the output layer '%s' is not the last layer", file, out_name ? out_name : "?");
    }
    addf(out, "[model]\ninput = ");
    for (size_t d = 1; d < shape->len; d++) {
        if (shape->items[d]->type != CT_JSON_NUMBER)
            return CT_FAIL(CT_ERR_DATA, "%s: input shape axis %zu is not fixed (null); ctrain needs every axis", file, d);
        addf(out, "%s%lld", d > 1 ? ", " : "", (long long)shape->items[d]->num);
    }
    const char *mname = ct_json_get_str(cfg, "name");
    if (mname && valid_name(mname)) addf(out, "\nname = %s", mname);
    addf(out, "\n\n");
    const ct_json_value *last_cfg = NULL;
    for (size_t i = 0; i < layers->len; i++) {
        const ct_json_value *l = layers->items[i], *c = ct_json_get(l, "config");
        if (is_input_layer(l)) continue;
        const char *lc = ct_json_get_str(l, "class_name"), *name = ct_json_get_str(c, "name");
        const ct_layer_type *t = type_for_class(lc);
        if (!name || !valid_name(name))
            return CT_FAIL(CT_ERR_DATA, "%s: layer %zu: name '%s' is not a ctrain layer name (1 to 63 letters, digits, "
                                        "'_' or '-', not 'input')", file, i, name ? name : "(none)");
        if (!t)
            return CT_FAIL(CT_ERR_DATA, "%s: layer '%s': ctrain has no %s layer", file, name, lc ? lc : "(unnamed class)");
        addf(out, "[%s]\ntype = %s\n", name, t->name);
        if (functional) {
            const ct_json_value *nodes = ct_json_get_type(l, "inbound_nodes", CT_JSON_ARRAY);
            if (!nodes || nodes->len != 1)
                return CT_FAIL(CT_ERR_DATA, "%s: layer '%s': %zu inbound nodes; ctrain imports layers used once", file,
                               name, nodes ? nodes->len : 0);
            const ct_json_value *refs = nodes->items[0];
            addf(out, "inputs = ");
            for (size_t r = 0; refs->type == CT_JSON_ARRAY && r < refs->len; r++) {
                const ct_json_value *ref = refs->items[r];
                const char *src = ref->type == CT_JSON_ARRAY && ref->len ? ref->items[0]->str : NULL;
                if (!src) return CT_FAIL(CT_ERR_DATA, "%s: layer '%s': malformed inbound node", file, name);
                addf(out, "%s%s", r ? ", " : "", input_name && !strcmp(src, input_name) ? CT_MODEL_INPUT_NAME : src);
            }
            addf(out, "\n");
        }
        CT_TRY(layer_keys(t, name, c, file, out));
        addf(out, "\n");
        last_cfg = c;
    }
    if (!last_cfg) return CT_FAIL(CT_ERR_DATA, "%s: the model has only an input layer", file);
    train_section(root, last_cfg, out);
    return out->failed ? CT_FAIL(CT_ERR_NOMEM, "config text") : CT_OK;
}

/* --- weights ---------------------------------------------------------------- */

typedef struct entry {
    const char *name;
    int64_t numel, offset, bytes;
    int qtype; /* 0 float32/int32, 1 uint8, 2 uint16, 3 float16 */
    int is_int;
    double min, scale;
} entry;

static ct_status read_shards(const ct_json_value *root, const char *file, const char *dir, entry **out, int *n_out,
                             uint8_t **data, int64_t *len)
{
    const ct_json_value *man = ct_json_get_type(root, "weightsManifest", CT_JSON_ARRAY);
    if (!man) return CT_FAIL(CT_ERR_DATA, "%s: no weightsManifest", file);
    int n = 0;
    for (size_t g = 0; g < man->len; g++) {
        const ct_json_value *w = ct_json_get_type(man->items[g], "weights", CT_JSON_ARRAY);
        n += w ? (int)w->len : 0;
    }
    entry *e = calloc((size_t)(n ? n : 1), sizeof *e);
    uint8_t *buf = NULL;
    int64_t total = 0;
    ct_status s = e ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "manifest");
    int k = 0;
    for (size_t g = 0; s == CT_OK && g < man->len; g++) {
        const ct_json_value *paths = ct_json_get_type(man->items[g], "paths", CT_JSON_ARRAY);
        const ct_json_value *w = ct_json_get_type(man->items[g], "weights", CT_JSON_ARRAY);
        int64_t group_start = total, want = 0;
        for (size_t i = 0; s == CT_OK && w && i < w->len; i++, k++) {
            const ct_json_value *we = w->items[i], *q = ct_json_get(we, "quantization");
            const ct_json_value *sh = ct_json_get_type(we, "shape", CT_JSON_ARRAY);
            const char *dt = ct_json_get_str(we, "dtype"), *qd = ct_json_get_str(q, "dtype");
            e[k].name = ct_json_get_str(we, "name");
            if (!e[k].name || !sh || !dt) {
                s = CT_FAIL(CT_ERR_DATA, "%s: weightsManifest entry %d lacks name, shape or dtype", file, k);
                break;
            }
            e[k].numel = 1;
            for (size_t d = 0; d < sh->len; d++) e[k].numel *= (int64_t)sh->items[d]->num;
            e[k].is_int = !strcmp(dt, "int32");
            if (!e[k].is_int && strcmp(dt, "float32")) {
                s = CT_FAIL(CT_ERR_DATA, "%s: weight '%s' has dtype %s; ctrain reads float32 and int32", file, e[k].name, dt);
                break;
            }
            e[k].qtype = !qd ? 0 : !strcmp(qd, "uint8") ? 1 : !strcmp(qd, "uint16") ? 2 : !strcmp(qd, "float16") ? 3 : -1;
            if (e[k].qtype < 0) {
                s = CT_FAIL(CT_ERR_DATA, "%s: weight '%s': unknown quantization dtype '%s'", file, e[k].name, qd);
                break;
            }
            e[k].min = cfg_num(q, "min", 0);
            e[k].scale = cfg_num(q, "scale", 1);
            if ((e[k].qtype == 1 || e[k].qtype == 2) && (!ct_json_get(q, "min") || !ct_json_get(q, "scale"))) {
                s = CT_FAIL(CT_ERR_DATA, "%s: weight '%s': %s quantization without min and scale", file, e[k].name, qd);
                break;
            }
            e[k].bytes = e[k].numel * (e[k].qtype == 1 ? 1 : e[k].qtype ? 2 : 4);
            e[k].offset = group_start + want;
            want += e[k].bytes;
        }
        for (size_t p = 0; s == CT_OK && paths && p < paths->len; p++) {
            char path[4096];
            const char *rel = paths->items[p]->type == CT_JSON_STRING ? paths->items[p]->str : "";
            snprintf(path, sizeof path, "%s/%s", dir, rel);
            char *bytes;
            size_t blen;
            s = read_all(path, &bytes, &blen);
            if (s != CT_OK) break;
            uint8_t *nb = realloc(buf, (size_t)(total + (int64_t)blen + 1));
            if (!nb) {
                free(bytes);
                s = CT_FAIL(CT_ERR_NOMEM, "%s", path);
                break;
            }
            buf = nb;
            memcpy(buf + total, bytes, blen);
            total += (int64_t)blen;
            free(bytes);
        }
        if (s == CT_OK && total - group_start != want)
            s = CT_FAIL(CT_ERR_DATA, "%s: weight group %zu: the shards hold %lld bytes, the manifest needs %lld", file,
                        g + 1, (long long)(total - group_start), (long long)want);
    }
    if (s != CT_OK) {
        free(e);
        free(buf);
        return s;
    }
    *out = e;
    *n_out = n;
    *data = buf;
    *len = total;
    return CT_OK;
}

static void decode(const entry *e, const uint8_t *data, float *out)
{
    const uint8_t *p = data + e->offset;
    for (int64_t i = 0; i < e->numel; i++) {
        if (e->qtype == 1) out[i] = (float)(p[i] * e->scale + e->min);
        else if (e->qtype == 2) {
            uint16_t q;
            memcpy(&q, p + 2 * i, 2);
            out[i] = (float)(q * e->scale + e->min);
        } else if (e->qtype == 3) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = ct_f32_from_f16(h);
        } else if (e->is_int) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        } else {
            memcpy(&out[i], p + 4 * i, 4);
        }
    }
}

/* "a/b/c" -> "a/c" (tfjs-layers' fallback for cell scopes). */
static int same_without_scope(const char *manifest, const char *want)
{
    const char *last = strrchr(manifest, '/'), *first = strchr(manifest, '/');
    if (!last || first == last) return 0;
    size_t head = (size_t)(first - manifest);
    return strncmp(manifest, want, head + 1) == 0 && strcmp(last + 1, want + head + 1) == 0 &&
           strchr(want + head + 1, '/') == NULL;
}

static ct_status load_weights(const char *file, const entry *e, int n, const uint8_t *data, ct_model *m)
{
    ct_graph *g = m->graph;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer *l = g->nodes[g->params[i].node].layer;
        ct_layer_param *p = (ct_layer_param *)&l->params[g->params[i].index];
        char want[2 * CT_NAME_MAX + 8];
        snprintf(want, sizeof want, "%s/%s", l->name, p->name);
        const entry *hit = NULL;
        for (int k = 0; k < n && !hit; k++)
            if (!strcmp(e[k].name, want)) hit = &e[k];
        for (int k = 0; k < n && !hit; k++)
            if (same_without_scope(e[k].name, want)) hit = &e[k];
        if (!hit) return CT_FAIL(CT_ERR_DATA, "%s: no weight '%s' in the weightsManifest", file, want);
        if (hit->numel != ct_shape_numel(&p->shape)) {
            char b[64];
            return CT_FAIL(CT_ERR_DATA, "%s: weight '%s' has %lld values, the layer expects shape %s", file, want,
                           (long long)hit->numel, ct_shape_str(&p->shape, 0, b, sizeof b));
        }
        decode(hit, data, p->value);
    }
    return CT_OK;
}

ct_status ct_tfjs_import(const char *model_json, const char *const *overrides, int n_overrides, ct_config **cfg,
                         ct_model **m, char **conf_text)
{
    if (conf_text) *conf_text = NULL;
    *cfg = NULL;
    *m = NULL;
    char *json = NULL, *dir = NULL;
    size_t len;
    ct_json_value *root = NULL;
    text conf = {0};
    entry *e = NULL;
    int n = 0;
    uint8_t *data = NULL;
    int64_t dlen = 0;
    ct_status s = read_all(model_json, &json, &len);
    if (s == CT_OK) s = ct_json_parse(json, len, model_json, &root);
    if (s == CT_OK && root->type != CT_JSON_OBJECT) s = CT_FAIL(CT_ERR_DATA, "%s: not a JSON object", model_json);
    const char *fmt = s == CT_OK ? ct_json_get_str(root, "format") : NULL;
    if (s == CT_OK && fmt && strcmp(fmt, "layers-model"))
        s = CT_FAIL(CT_ERR_DATA, "%s: format is '%s'; ctrain imports layers models (a graph model has no Keras layers)",
                    model_json, fmt);
    if (s == CT_OK) s = topology_conf(root, model_json, &conf);
    if (s == CT_OK) {
        dir = strdup(model_json);
        if (!dir) s = CT_FAIL(CT_ERR_NOMEM, "path");
        else {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0;
            else strcpy(dir, ".");
        }
    }
    if (s == CT_OK) s = read_shards(root, model_json, dir, &e, &n, &data, &dlen);
    if (s == CT_OK) {
        char name[4200];
        snprintf(name, sizeof name, "%s (as config)", model_json);
        s = ct_config_parse(conf.s, conf.len, name, NULL, cfg);
    }
    for (int i = 0; s == CT_OK && i < n_overrides; i++) s = ct_config_override(*cfg, overrides[i]);
    if (s == CT_OK && n_overrides) s = ct_config_validate(*cfg);
    if (s == CT_OK) s = ct_model_create(*cfg, m);
    if (s == CT_OK) s = load_weights(model_json, e, n, data, *m);
    if (s != CT_OK) {
        ct_model_destroy(*m);
        ct_config_free(*cfg);
        *m = NULL;
        *cfg = NULL;
    }
    if (s == CT_OK && conf_text) {
        *conf_text = conf.s;
        conf.s = NULL;
    }
    free(data);
    free(e);
    free(dir);
    free(conf.s);
    ct_json_value_free(root);
    free(json);
    return s;
}
