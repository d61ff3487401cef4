/* The functional graph: per-layer key tables (a layer type registered at
 * run time declaring its own keys), named inputs with dtypes, several
 * outputs, shared layers, frozen layers and gradients with respect to the
 * inputs. Gradients are checked against central differences through the
 * graph API (ct_graph_forward / ct_graph_backward) on the loss
 * sum_k sum(out_k * R_k) with fixed random R_k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/config.h"
#include "../core/graph.h"
#include "../core/layer.h"
#include "../core/model.h"
#include "ct_test.h"

static ct_config *parse(const char *text)
{
    ct_config *cfg = NULL;
    if (ct_config_parse(text, strlen(text), "mem.conf", NULL, &cfg) != CT_OK) {
        fprintf(stderr, "parse: %s\n", ct_error_message());
        return NULL;
    }
    return cfg;
}

static ct_graph *build(const char *text, ct_config **cfg_out)
{
    ct_config *cfg = parse(text);
    ct_graph *g = NULL;
    if (cfg && ct_graph_build(cfg, 11, &g) != CT_OK) fprintf(stderr, "build: %s\n", ct_error_message());
    if (cfg_out) *cfg_out = cfg;
    else ct_config_free(cfg);
    return g;
}

static uint64_t lcg = 12345;
static float frand(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) & 0xffffff) / (float)0x1000000 * 2.0f - 1.0f;
}

/* ---- a layer type registered at run time, with keys of its own ---------- */

typedef struct scaleby {
    ct_layer base;
    double factor;
    int64_t taps[3];
    int n_taps;
    const char *note; /* only compared, in the test */
    double momentum;
} scaleby;

static ct_status check_note(const char *v)
{
    if (strcmp(v, "a") == 0 || strcmp(v, "b") == 0) return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "note must be a or b, got '%s'", v);
}

static const ct_layer_key scaleby_keys[] = {
    {"factor", CT_KEY_FLOAT, "2", CT_KEY_RANGE | CT_KEY_LO_OPEN, 0, 100, 0, NULL, "multiplier in (0, 100]"},
    {"taps", CT_KEY_INTS, "1, 2", 0, 0, 0, 3, NULL, "up to three integers"},
    {"note", CT_KEY_STRING, NULL, 0, 0, 0, 0, check_note, "a | b"},
    {"momentum", CT_KEY_FLOAT, "0.5", 0, 0, 0, 0, NULL, "a LayerConfig field name, with this layer's default"},
    {NULL},
};

static char seen_note[8];

static ct_status scaleby_init(ct_layer *l, const ct_layer_config *c)
{
    scaleby *s = (scaleby *)l;
    CT_TRY(ct_layer_arg_float(l, c, "factor", &s->factor));
    CT_TRY(ct_layer_arg_ints(l, c, "taps", s->taps, 3, &s->n_taps));
    CT_TRY(ct_layer_arg_string(l, c, "note", &s->note));
    snprintf(seen_note, sizeof seen_note, "%s", s->note ? s->note : "-");
    return ct_layer_arg_float(l, c, "momentum", &s->momentum);
}

static ct_status scaleby_infer(ct_layer *l)
{
    l->out_shape = l->in_shape[0];
    return CT_OK;
}

static void scaleby_forward(ct_layer *l, const ct_layer_io *io)
{
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    for (int64_t i = 0; i < n; i++) io->out[i] = (float)(((scaleby *)l)->factor * io->in[0][i]);
}

static void scaleby_backward(ct_layer *l, const ct_layer_io *io)
{
    int64_t n = io->batch * ct_shape_numel(&l->out_shape);
    if (io->din[0])
        for (int64_t i = 0; i < n; i++) io->din[0][i] += (float)(((scaleby *)l)->factor * io->dout[i]);
}

static const ct_layer_type scaleby_type = {
    .name = "scaleby", .keras_class = "ScaleBy", .keys = scaleby_keys, .size = sizeof(scaleby),
    .min_inputs = 1, .max_inputs = 1,
    .init = scaleby_init, .infer = scaleby_infer, .forward = scaleby_forward, .backward = scaleby_backward,
};

static const char *extra_value(const ct_layer_config *l, const char *key)
{
    for (size_t i = 0; i < l->n_extra; i++)
        if (strcmp(l->extra[i]->key, key) == 0) return l->extra[i]->value;
    return NULL;
}

static void test_plugin_keys(void)
{
    CHECK(ct_layer_register(&scaleby_type) == CT_OK);
    const char *text = "[model]\ninput = 3\n\n[s]\ntype = scaleby\nfactor = 3.5\ntaps = 4, 5, 6\nnote = b\n"
                       "momentum = 0.25\n\n[out]\ntype = dense\nunits = 2\n";
    ct_config *cfg = parse(text);
    CHECK(cfg != NULL);
    if (!cfg) return;
    const ct_layer_config *s = cfg->layers[0];
    /* keys outside LayerConfig are text in extra; momentum is the old field */
    CHECK(s->n_extra == 3 && strcmp(extra_value(s, "factor"), "3.5") == 0);
    CHECK(s->has_momentum && s->momentum == 0.25f && !extra_value(s, "momentum"));
    CHECK(s->extra[0]->line == 6);
    /* the packed config carries them to other ranks and checkpoints */
    uint8_t *buf = NULL;
    size_t len = 0;
    ct_config *back = NULL;
    CHECK(ct_config_pack(cfg, &buf, &len) == CT_OK && ct_config_unpack(buf, len, &back) == CT_OK);
    CHECK(back && ct_config_validate(back) == CT_OK);
    ct_graph *g = NULL;
    CHECK(back && ct_graph_build(back, 1, &g) == CT_OK);
    if (g) {
        scaleby *l = (scaleby *)g->nodes[0].layer;
        CHECK(l->factor == 3.5 && l->n_taps == 3 && l->taps[2] == 6 && l->momentum == 0.25);
        CHECK(strcmp(seen_note, "b") == 0);
    }
    ct_graph_destroy(g);
    ct_config_free(back);
    free(buf);
    /* --set reaches an extra key and is checked by the table */
    CHECK(ct_config_override(cfg, "s.factor=5") == CT_OK && strcmp(extra_value(cfg->layers[0], "factor"), "5") == 0);
    CHECK_FAILS(ct_config_override(cfg, "s.factor=500"), CT_ERR_CONFIG, "[s] factor", "(0, 100]", "500");
    CHECK(strcmp(extra_value(cfg->layers[0], "factor"), "5") == 0); /* a failed override changes nothing */
    ct_config_free(cfg);
    /* defaults from the table */
    g = build("[model]\ninput = 3\n\n[s]\ntype = scaleby\n", NULL);
    CHECK(g != NULL);
    if (g) {
        scaleby *l = (scaleby *)g->nodes[0].layer;
        CHECK(l->factor == 2 && l->n_taps == 2 && l->taps[1] == 2 && l->momentum == 0.5 && !l->note);
    }
    ct_graph_destroy(g);
    /* bad values name file:line, section and key */
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"factor = 0", "mem.conf:6: [s] factor: expected a number: must be in (0, 100], got 0"},
        {"factor = x", "mem.conf:6: [s] factor: expected a number"},
        {"taps = 1, 2, 3, 4", "mem.conf:6: [s] taps: expected a list of integers: has 4 values, at most 3"},
        {"note = c", "mem.conf:6: [s] note: expected a string: note must be a or b"},
        {"factr = 3", "mem.conf:6: [s] unknown key 'factr'; did you mean 'factor'?"},
        {"factor = 3\nfactor = 4", "mem.conf:7: [s] factor: duplicate key (first set on line 6)"},
        {"units = 3", "mem.conf:6: [s] units: layer type scaleby does not take this key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, "[model]\ninput = 3\n\n[s]\ntype = scaleby\n%s\n", bad[i].body);
        ct_config *c = NULL;
        CHECK_FAILS(ct_config_parse(t, strlen(t), "mem.conf", NULL, &c), CT_ERR_CONFIG, bad[i].msg);
        ct_config_free(c);
    }
    /* a key before the type is checked when the section closes */
    const char *late = "[model]\ninput = 3\n\n[s]\nfactor = 0\ntype = scaleby\n";
    ct_config *c = NULL;
    CHECK_FAILS(ct_config_parse(late, strlen(late), "mem.conf", NULL, &c), CT_ERR_CONFIG,
                "mem.conf:5: [s] factor: expected a number: must be in (0, 100]");
    /* tables that would break the contract are refused at registration */
    static const ct_layer_key clash[] = {{"units", CT_KEY_STRING, NULL, 0, 0, 0, 0, NULL, ""}, {NULL}};
    static const ct_layer_key base[] = {{"inputs", CT_KEY_STRINGS, NULL, 0, 0, 0, 0, NULL, ""}, {NULL}};
    static const ct_layer_key bad_def[] = {{"k", CT_KEY_INT, "x", 0, 0, 0, 0, NULL, ""}, {NULL}};
    ct_layer_type t = scaleby_type;
    t.name = "clash";
    t.keys = clash;
    CHECK_FAILS(ct_layer_register(&t), CT_ERR_USAGE, "'units' is a LayerConfig field of another kind");
    t.keys = base;
    CHECK_FAILS(ct_layer_register(&t), CT_ERR_USAGE, "'inputs' is a base key");
    t.keys = bad_def;
    CHECK_FAILS(ct_layer_register(&t), CT_ERR_USAGE, "default of key 'k'");
    CHECK(ct_layer_type_find("clash") == NULL);
    /* every built-in type registered (a bad table would have been refused) */
    const char *builtin[] = {"dense", "conv2d", "batch_normalization", "dropout", "input", "concatenate",
                             "maxpool2d", "upsampling2d", "zero_padding2d", "reshape", "conv2d_transpose"};
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) CHECK(ct_layer_type_find(builtin[i]) != NULL);
}

/* ---- gradients ---------------------------------------------------------- */

typedef struct probe {
    ct_graph *g;
    int64_t b;
    float *xs[CT_GRAPH_MAX_IO];
    float *r[CT_GRAPH_MAX_IO];
} probe;

static double probe_loss(probe *p)
{
    ct_graph *g = p->g;
    ct_graph_forward_inputs(g, (const float *const *)p->xs, p->b, 1, 0, 7);
    double l = 0;
    for (int k = 0; k < g->n_outputs; k++) {
        ct_node *o = ct_graph_output_at(g, k);
        for (int64_t i = 0; i < p->b * o->out_size; i++) l += (double)o->y[i] * p->r[k][i];
    }
    return l;
}

static int close_to(double num, double ana) { return fabs(num - ana) <= 2e-3 + 2e-2 * fabs(num); }

/* Analytic gradients of every trainable parameter and (with input_grads)
 * every input value against central differences; returns mismatches. */
static int check_gradients(probe *p)
{
    ct_graph *g = p->g;
    int bad = 0;
    probe_loss(p);
    for (int k = 0; k < g->n_outputs; k++) {
        ct_node *o = ct_graph_output_at(g, k);
        memcpy(o->dy, p->r[k], sizeof(float) * (size_t)(p->b * o->out_size));
    }
    ct_graph_backward(g, p->b, 0, 0, 7);
    float *ana = malloc(sizeof(float) * (size_t)(g->n_values + 1));
    memcpy(ana, g->grads, sizeof(float) * (size_t)g->n_values);
    const float h = 5e-3f;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *prm = ct_graph_param(g, i);
        if (prm->offset >= g->n_trainable) continue;
        for (int64_t j = 0; j < ct_shape_numel(&prm->shape); j++) {
            float v = prm->value[j];
            prm->value[j] = v + h;
            double lp = probe_loss(p);
            prm->value[j] = v - h;
            double lm = probe_loss(p);
            prm->value[j] = v;
            double num = (lp - lm) / (2 * h);
            if (!close_to(num, ana[prm->offset + j])) {
                if (bad++ < 5)
                    fprintf(stderr, "  %s[%lld]: numeric %.6g analytic %.6g\n", g->params[i].full_name, (long long)j,
                            num, ana[prm->offset + j]);
            }
        }
    }
    for (int k = 0; g->input_grads && k < g->n_inputs; k++) {
        int64_t n = p->b * g->inputs[k].size;
        float *dx = malloc(sizeof(float) * (size_t)n);
        probe_loss(p);
        for (int kk = 0; kk < g->n_outputs; kk++) {
            ct_node *o = ct_graph_output_at(g, kk);
            memcpy(o->dy, p->r[kk], sizeof(float) * (size_t)(p->b * o->out_size));
        }
        ct_graph_backward(g, p->b, 0, 0, 7);
        memcpy(dx, g->inputs[k].dx, sizeof(float) * (size_t)n);
        for (int64_t j = 0; j < n; j++) {
            float v = p->xs[k][j];
            p->xs[k][j] = v + h;
            double lp = probe_loss(p);
            p->xs[k][j] = v - h;
            double lm = probe_loss(p);
            p->xs[k][j] = v;
            double num = (lp - lm) / (2 * h);
            if (!close_to(num, dx[j]) && bad++ < 5)
                fprintf(stderr, "  d/d %s[%lld]: numeric %.6g analytic %.6g\n", g->inputs[k].name, (long long)j, num,
                        dx[j]);
        }
        free(dx);
    }
    free(ana);
    return bad;
}

static void probe_init(probe *p, ct_graph *g, int64_t b)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    p->b = b;
    for (int k = 0; k < g->n_inputs; k++) {
        p->xs[k] = malloc(sizeof(float) * (size_t)(b * g->inputs[k].size));
        for (int64_t j = 0; j < b * g->inputs[k].size; j++) p->xs[k][j] = frand();
    }
    for (int k = 0; k < g->n_outputs; k++) {
        ct_node *o = ct_graph_output_at(g, k);
        p->r[k] = malloc(sizeof(float) * (size_t)(b * o->out_size));
        for (int64_t j = 0; j < b * o->out_size; j++) p->r[k][j] = frand();
    }
}

static void probe_free(probe *p)
{
    for (int k = 0; k < CT_GRAPH_MAX_IO; k++) {
        free(p->xs[k]);
        free(p->r[k]);
    }
}

static const char *two_in_two_out =
    "[model]\noutputs = out1, out2\n\n"
    "[a]\ntype = input\nshape = 3\n\n"
    "[b]\ntype = input\nshape = 2, 2\n\n"
    "[fa]\ntype = dense\nunits = 4\nactivation = tanh\ninputs = a\n\n"
    "[fb]\ntype = flatten\ninputs = b\n\n"
    "[cat]\ntype = concatenate\ninputs = fa, fb\n\n"
    "[out1]\ntype = dense\nunits = 2\n\n"
    "[out2]\ntype = dense\nunits = 3\nactivation = sigmoid\ninputs = fa\n";

static void test_inputs_outputs(void)
{
    ct_graph *g = build(two_in_two_out, NULL);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(g->n_inputs == 2 && strcmp(g->inputs[1].name, "b") == 0 && g->inputs[1].size == 4);
    CHECK(g->inputs[0].offset == 0 && g->inputs[1].offset == 3 && g->input_size == 7);
    CHECK(g->inputs[0].dtype == CT_FLOAT32 && g->inputs[1].shape.rank == 2);
    CHECK(g->n_outputs == 2 && ct_graph_output_at(g, 0) == &g->nodes[ct_graph_find_node(g, "out1")]);
    CHECK(ct_graph_output_at(g, 1)->out_index == 1 && g->n_nodes == 5);
    CHECK(g->nodes[0].in[0] == CT_INPUT_REF(0) && g->nodes[1].in[0] == CT_INPUT_REF(1));
    CHECK(ct_graph_set_input_grads(g, 1) == CT_OK && ct_graph_plan(g, 3) == CT_OK);
    probe p;
    probe_init(&p, g, 3);
    CHECK(check_gradients(&p) == 0);
    /* flat rows (what the data pipeline carries) give the same outputs */
    float flat[3 * 7], y1[3 * 2], y2[3 * 3];
    for (int r = 0; r < 3; r++) {
        memcpy(flat + r * 7, p.xs[0] + r * 3, 3 * sizeof(float));
        memcpy(flat + r * 7 + 3, p.xs[1] + r * 4, 4 * sizeof(float));
    }
    probe_loss(&p);
    memcpy(y1, ct_graph_output_at(g, 0)->y, sizeof y1);
    memcpy(y2, ct_graph_output_at(g, 1)->y, sizeof y2);
    ct_graph_forward(g, flat, 3, 1, 0, 7);
    CHECK(memcmp(y1, ct_graph_output_at(g, 0)->y, sizeof y1) == 0);
    CHECK(memcmp(y2, ct_graph_output_at(g, 1)->y, sizeof y2) == 0);
    probe_free(&p);
    ct_graph_destroy(g);
}

static const char *siamese =
    "[l]\ntype = input\nshape = 3\n\n"
    "[r]\ntype = input\nshape = 3\n\n"
    "[enc]\ntype = dense\nunits = 4\nactivation = tanh\ninputs = l\n\n"
    "[enc_r]\napply = enc\ninputs = r\n\n"
    "[join]\ntype = add\ninputs = enc, enc_r\n\n"
    "[head]\ntype = dense\nunits = 1\n\n"
    "[model]\nname = siamese\n";

static void test_shared_layer(void)
{
    ct_graph *g = build(siamese, NULL);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(g->n_nodes == 4 && g->n_layers == 3);
    int er = ct_graph_find_node(g, "enc_r");
    CHECK(er == 1 && g->nodes[er].layer == g->nodes[0].layer && g->nodes[er].call == 1 && g->nodes[0].layer->n_calls == 2);
    /* one weight set: 3x4 + 4 for the encoder, 4 + 1 for the head */
    CHECK(g->n_params == 4 && ct_graph_count_params(g, 0) == 16 + 5);
    CHECK(ct_graph_set_input_grads(g, 1) == CT_OK && ct_graph_plan(g, 2) == CT_OK);
    probe p;
    probe_init(&p, g, 2);
    CHECK(check_gradients(&p) == 0);
    probe_free(&p);
    ct_graph_destroy(g);
}

static void test_frozen_layer(void)
{
    const char *text = "[model]\ninput = 3\n\n[enc]\ntype = dense\nunits = 4\nactivation = tanh\ntrainable = false\n\n"
                       "[bn]\ntype = batch_normalization\n\n[head]\ntype = dense\nunits = 2\n";
    ct_graph *g = build(text, NULL);
    CHECK(g != NULL);
    if (!g) return;
    const ct_layer *enc = g->nodes[0].layer, *bn = g->nodes[1].layer;
    CHECK(!enc->trainable && bn->trainable);
    /* trainable: BN gamma, beta and the head; then the frozen encoder; then BN statistics */
    CHECK(g->n_trainable == 16 + 16 + 16 + 16 && ct_graph_count_params(g, 1) == 4 + 4 + 10);
    CHECK(enc->params[0].offset >= g->n_trainable && enc->params[0].offset < g->stats_lo);
    CHECK(bn->params[2].offset >= g->stats_lo);
    CHECK(!g->nodes[0].needs_grad && g->nodes[1].needs_grad); /* nothing to learn below the BN */
    CHECK(ct_graph_plan(g, 4) == CT_OK);
    probe p;
    probe_init(&p, g, 4);
    CHECK(check_gradients(&p) == 0);
    probe_free(&p);
    ct_graph_destroy(g);
}

/* Every new construct's mistakes name file:line. */
static void test_graph_errors(void)
{
    static const struct {
        const char *text, *msg;
        ct_status st;
    } bad[] = {
        {"[model]\noutputs = nope\n\n[a]\ntype = input\nshape = 3\n\n[fc]\ntype = dense\nunits = 2\n",
         "mem.conf:1: [model] outputs: unknown output layer 'nope'", CT_ERR_CONFIG},
        {"[model]\noutputs = a\n\n[a]\ntype = input\nshape = 3\n\n[fc]\ntype = dense\nunits = 2\n",
         "mem.conf:1: [model] outputs: 'a' is a model input", CT_ERR_CONFIG},
        {"[t]\ntype = input\nshape = 4\ndtype = int32\n\n[fc]\ntype = dense\nunits = 2\ninputs = t\n\n[model]\n",
         "mem.conf:6: dense 'fc': cannot take the int32 input 't'", CT_ERR_CONFIG},
        {"[t]\ntype = input\nshape = 4\ndtype = int64\n\n[fc]\ntype = dense\nunits = 2\n\n[model]\n",
         "mem.conf:4: [t] dtype: expected a string: unknown dtype 'int64'", CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\n\n[r]\ntype = input\nshape = 5\n\n[enc]\ntype = dense\nunits = 4\ninputs = l\n\n"
         "[enc_r]\napply = enc\ninputs = r\n\n[j]\ntype = add\ninputs = enc, enc_r\n\n[model]\n",
         "mem.conf:14: [enc_r] applies the shared layer 'enc' to an input of shape 5, but [enc] applies it to 3",
         CT_ERR_SHAPE},
        {"[l]\ntype = input\nshape = 3\n\n[enc]\ntype = dense\nunits = 4\n\n[e2]\napply = encx\n\n[model]\n",
         "mem.conf:10: [e2] apply: unknown layer 'encx'; did you mean 'enc'?", CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\n\n[enc]\ntype = dense\nunits = 4\n\n[e2]\napply = enc\nunits = 3\n\n[model]\n",
         "mem.conf:11: [e2] units: a section with apply = enc reuses that layer as it is", CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\n\n[e2]\napply = l\n\n[model]\n", "'l' is a model input, not a layer to apply",
         CT_ERR_CONFIG},
        {"[model]\ninput = 3\n\n[l]\ntype = input\nshape = 3\n\n[fc]\ntype = dense\nunits = 1\n",
         "mem.conf:1: [model] input: both 'input' and sections with type = input", CT_ERR_CONFIG},
        {"[fc]\ntype = dense\nunits = 1\n\n[l]\ntype = input\nshape = 3\n\n[model]\n",
         "mem.conf:1: [fc] the first layer has no input", CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\ninputs = l\n\n[fc]\ntype = dense\nunits = 1\n\n[model]\n",
         "layer type input takes no inputs", CT_ERR_CONFIG},
        {"[l]\ntype = input\n\n[fc]\ntype = dense\nunits = 1\n\n[model]\n", "mem.conf:1: input 'l': needs shape",
         CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\n\n[fc]\ntype = dense\nunits = 1\ninputs = input\n\n[model]\n",
         "mem.conf:5: [fc] inputs: 'input' names the [model] input", CT_ERR_CONFIG},
        {"[l]\ntype = input\nshape = 3\n\n[a]\ntype = dense\nunits = 1\n\n[b]\ntype = dense\nunits = 1\ninputs = l\n\n[model]\n",
         "mem.conf:5: layer 'a' does not lead to the output layer 'b'", CT_ERR_CONFIG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ct_config *cfg = NULL;
        ct_graph *g = NULL;
        ct_error_clear();
        ct_status s = ct_config_parse(bad[i].text, strlen(bad[i].text), "mem.conf", NULL, &cfg);
        if (s == CT_OK) s = ct_graph_build(cfg, 1, &g);
        CHECK_MSG(s == bad[i].st, "case %zu gave %s: %s", i, ct_status_name(s), ct_error_message());
        CHECK_STR_CONTAINS(ct_error_message(), bad[i].msg);
        ct_graph_destroy(g);
        ct_config_free(cfg);
    }
}


/* ---- the model: several outputs through the real training step ---------- */

static const char *two_out_model =
    "[a]\ntype = input\nshape = 3\n\n"
    "[seq]\ntype = input\nshape = 4, 2\n\n"
    "[h]\ntype = dense\nunits = 3\nactivation = tanh\ninputs = a\n\n"
    "[tok]\ntype = dense\nunits = 5\nactivation = softmax\ninputs = seq\n\n"
    "[cls]\ntype = dense\nunits = 2\nactivation = sigmoid\ninputs = h\n\n"
    "[model]\noutputs = tok, cls\n\n"
    "[train]\noptimizer = sgd\nlearning_rate = 1\nbatch_size = 3\n"
    "loss = tok: sparse_categorical_crossentropy, cls: binary_crossentropy\n"
    "loss_weights = tok: 0.7, cls: 0.3\nmetrics = tok: accuracy, cls: binary_accuracy\n";

/* x: a (3) then seq (4x2); y: tok's 4 class indices then cls's 2 bits. */
static void two_out_batch(float *x, float *y, int64_t b)
{
    for (int64_t i = 0; i < b * 11; i++) x[i] = frand();
    for (int64_t r = 0; r < b; r++) {
        for (int t = 0; t < 4; t++) y[r * 6 + t] = (float)((r * 3 + t * 2) % 5);
        y[r * 6 + 4] = (float)(r % 2);
        y[r * 6 + 5] = (float)((r + 1) % 2);
    }
}

static ct_dataset as_dataset(float *x, float *y, int64_t n, int64_t xs, int64_t ys)
{
    ct_dataset d = {0};
    d.n = n;
    d.x_shape = ct_shape1(xs);
    d.y_shape = ct_shape1(ys);
    d.x_size = xs;
    d.y_size = ys;
    d.x = x;
    d.y = y;
    return d;
}

/* SGD with learning rate 1 turns the step's update into its gradient:
 * before - after. Checked against central differences of the loss that
 * evaluate reports (the weighted sum of both outputs' losses, every
 * position of the (4, 5) output included). */
static void test_two_output_step(void)
{
    ct_config *cfg = parse(two_out_model);
    ct_model *m = NULL;
    CHECK(cfg && ct_model_create(cfg, &m) == CT_OK);
    if (!m) {
        fprintf(stderr, "%s\n", ct_error_message());
        ct_config_free(cfg);
        return;
    }
    CHECK(m->n_outputs == 2 && m->y_size == 6 && m->outputs[0].positions == 4 && m->outputs[0].d == 5);
    CHECK(m->outputs[0].fused && m->outputs[1].fused && m->outputs[1].weight == 0.3);
    CHECK(m->n_metrics == 4 && strcmp(m->metrics[0].name, "tok_loss") == 0 &&
          strcmp(m->metrics[1].name, "cls_loss") == 0 && strcmp(m->metrics[2].name, "tok_accuracy") == 0 &&
          strcmp(m->metrics[3].name, "cls_binary_accuracy") == 0);
    CHECK(m->metrics[2].kind == CT_METRIC_SPARSE_CATEGORICAL_ACCURACY);
    enum { B = 3 };
    float x[B * 11], y[B * 6];
    two_out_batch(x, y, B);
    ct_dataset d = as_dataset(x, y, B, 11, 6);
    ct_graph *g = m->graph;
    int64_t n = g->n_trainable;
    float *before = malloc(sizeof(float) * (size_t)n), *num = malloc(sizeof(float) * (size_t)n);
    memcpy(before, g->values, sizeof(float) * (size_t)n);
    const double h = 2e-3;
    for (int64_t i = 0; i < n; i++) {
        ct_logs lp = {0}, lm = {0};
        float v = g->values[i];
        g->values[i] = (float)(v + h);
        ct_model_evaluate(m, &d, &lp);
        g->values[i] = (float)(v - h);
        ct_model_evaluate(m, &d, &lm);
        g->values[i] = v;
        double a, b;
        ct_logs_get(&lp, "loss", &a);
        ct_logs_get(&lm, "loss", &b);
        num[i] = (float)((a - b) / (2 * h));
    }
    double loss;
    CHECK(ct_model_train_step(m, x, y, NULL, B, &loss) == CT_OK);
    int bad = 0, nonzero = 0;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = ct_graph_param(g, i);
        for (int64_t j = 0; p->offset < n && j < ct_shape_numel(&p->shape); j++) {
            int64_t o = p->offset + j;
            double ana = (double)before[o] - g->values[o];
            nonzero += ana != 0;
            if (!close_to(num[o], ana) && bad++ < 5)
                fprintf(stderr, "  %s[%lld]: numeric %.6g step %.6g\n", g->params[i].full_name, (long long)j, num[o], ana);
        }
    }
    CHECK(bad == 0 && nonzero > 30); /* of 35 */
    /* every position of the (4, 5) output got its gradient */
    ct_node *tok = ct_graph_output_at(g, 0);
    int zero = 0;
    for (int64_t i = 0; i < B * 20; i++) zero += tok->dy[i] == 0;
    CHECK(zero == 0);
    free(before);
    free(num);
    ct_model_destroy(m);
    ct_config_free(cfg);
}

/* Per-output losses, loss_weights and metrics against values computed by
 * hand, on outputs whose weights are set to known values. */
static void test_loss_weights_metrics(void)
{
    const char *text = "[a]\ntype = input\nshape = 2\n\n"
                       "[o1]\ntype = dense\nunits = 2\nuse_bias = false\ninputs = a\n\n"
                       "[o2]\ntype = dense\nunits = 1\nuse_bias = false\ninputs = a\n\n"
                       "[model]\noutputs = o1, o2\n\n"
                       "[train]\nloss = o1: mse, o2: mae\nloss_weights = 2.0, 0.5\nmetrics = o1: mae, o2: mse\n"
                       "batch_size = 2\n";
    ct_config *cfg = parse(text);
    ct_model *m = NULL;
    CHECK(cfg && ct_model_create(cfg, &m) == CT_OK);
    if (!m) {
        ct_config_free(cfg);
        return;
    }
    ct_graph *g = m->graph;
    float *k1 = g->nodes[0].layer->params[0].value, *k2 = g->nodes[1].layer->params[0].value;
    k1[0] = 1, k1[1] = 0, k1[2] = 0, k1[3] = 1; /* o1 = a */
    k2[0] = 1, k2[1] = 1;                       /* o2 = a0 + a1 */
    float x[3 * 2] = {1, 2, -1, 0.5f, 3, -2};
    float y[3 * 3] = {0, 2, 4, -1, 1, 0, 3, -1, 2};
    ct_dataset d = as_dataset(x, y, 3, 2, 3);
    ct_logs logs = {0};
    CHECK(ct_model_evaluate(m, &d, &logs) == CT_OK);
    double mse1 = 0, mae1 = 0, mae2 = 0, mse2 = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 2; j++) {
            double e = x[i * 2 + j] - y[i * 3 + j];
            mse1 += e * e / 2 / 3;
            mae1 += fabs(e) / 2 / 3;
        }
        double e2 = x[i * 2] + x[i * 2 + 1] - y[i * 3 + 2];
        mae2 += fabs(e2) / 3;
        mse2 += e2 * e2 / 3;
    }
    double v;
    CHECK(ct_logs_get(&logs, "loss", &v) && fabs(v - (2.0 * mse1 + 0.5 * mae2)) < 1e-5);
    CHECK(ct_logs_get(&logs, "o1_loss", &v) && fabs(v - mse1) < 1e-5);
    CHECK(ct_logs_get(&logs, "o2_loss", &v) && fabs(v - mae2) < 1e-5);
    CHECK(ct_logs_get(&logs, "o1_mae", &v) && fabs(v - mae1) < 1e-5);
    CHECK(ct_logs_get(&logs, "o2_mse", &v) && fabs(v - mse2) < 1e-5);
    CHECK(logs.n == 5 && strcmp(logs.names[1], "o1_loss") == 0 && strcmp(logs.names[3], "o1_mae") == 0);
    /* predictions: both outputs per sample, in order */
    float pred[3 * 3];
    CHECK(m->pred_size == 3 && ct_model_predict(m, x, 3, pred) == CT_OK);
    CHECK(pred[3] == x[2] && pred[4] == x[3] && pred[5] == x[2] + x[3]);
    ct_model_destroy(m);
    ct_config_free(cfg);
    /* a loss for an output the model lacks names the line */
    const char *bad = "[a]\ntype = input\nshape = 2\n\n[o1]\ntype = dense\nunits = 2\n\n"
                      "[train]\nloss = o2: mse\n\n[model]\n";
    ct_config *c = NULL;
    CHECK_FAILS(ct_config_parse(bad, strlen(bad), "mem.conf", NULL, &c), CT_ERR_CONFIG,
                "mem.conf:9: [train] loss: unknown output 'o2'");
    const char *bad_w = "[a]\ntype = input\nshape = 2\n\n[o1]\ntype = dense\nunits = 2\n\n"
                        "[train]\nloss = mse\nloss_weights = 1, 2\n\n[model]\n";
    CHECK_FAILS(ct_config_parse(bad_w, strlen(bad_w), "mem.conf", NULL, &c), CT_ERR_CONFIG,
                "mem.conf:9: [train] loss_weights: 2 weights for 1 outputs");
}

/* The silent wrong training: a Dense on (4, 5) samples with
 * (4, 5) targets. Every one of the 4 x 5 positions of each sample gets a
 * gradient, and the loss is the mean over all of them. */
static void test_rank2_output(void)
{
    const char *text = "[model]\ninput = 4, 5\n\n[fc]\ntype = dense\nunits = 5\n\n[train]\nloss = mse\nbatch_size = 2\n";
    ct_config *cfg = parse(text);
    ct_model *m = NULL;
    CHECK(cfg && ct_model_create(cfg, &m) == CT_OK);
    if (!m) {
        ct_config_free(cfg);
        return;
    }
    CHECK(m->y_size == 20 && m->outputs[0].positions == 4);
    ct_shape xs = ct_shape2(4, 5), short_y = ct_shape1(5);
    CHECK_FAILS(ct_model_check_shapes(m, &xs, &short_y, 0, "training data"), CT_ERR_SHAPE, "targets have 5 values",
                "take 20");
    float x[2 * 20], y[2 * 20];
    for (int i = 0; i < 40; i++) x[i] = frand(), y[i] = frand();
    CHECK(ct_model_plan(m, 2) == CT_OK && ct_model_forward(m, x, 2, 1) == CT_OK);
    double sum = 0;
    CHECK(ct_model_loss(m, y, NULL, 2, 0.5f, &sum) == CT_OK);
    const ct_node *out = ct_graph_output(m->graph);
    int nonzero = 0;
    double ref = 0;
    for (int i = 0; i < 40; i++) {
        nonzero += out->dy[i] != 0;
        double e = (double)out->y[i] - y[i];
        ref += e * e / 20; /* per-sample mean over all 20 values, summed over samples */
        CHECK_NEAR(out->dy[i], 0.5 * 2 * e / 20, 1e-6);
    }
    CHECK(nonzero == 40);
    CHECK_NEAR(sum, ref, 1e-5);
    ct_model_destroy(m);
    ct_config_free(cfg);
}

/* Phases: a frozen encoder stays bit-identical while the head trains;
 * unfrozen, it trains too (the optimizer restarts over the new range). */
static void test_freeze_phases(void)
{
    const char *text = "[model]\ninput = 4\n\n[enc]\ntype = dense\nunits = 3\nactivation = tanh\ntrainable = false\n\n"
                       "[head]\ntype = dense\nunits = 2\n\n[train]\nloss = mse\noptimizer = adam\nbatch_size = 4\n";
    ct_config *cfg = parse(text);
    ct_model *m = NULL;
    CHECK(cfg && ct_model_create(cfg, &m) == CT_OK);
    if (!m) {
        ct_config_free(cfg);
        return;
    }
    float x[4 * 4], y[4 * 2], enc0[15], head0[8];
    for (int i = 0; i < 16; i++) x[i] = frand();
    for (int i = 0; i < 8; i++) y[i] = frand();
    const ct_layer *enc = m->graph->nodes[0].layer, *head = m->graph->nodes[1].layer;
    memcpy(enc0, enc->params[0].value, 12 * sizeof(float));
    memcpy(enc0 + 12, enc->params[1].value, 3 * sizeof(float));
    memcpy(head0, head->params[0].value, 6 * sizeof(float));
    memcpy(head0 + 6, head->params[1].value, 2 * sizeof(float));
    CHECK(m->opt->n == m->graph->n_trainable && m->graph->n_trainable == 16 + 16);
    double loss;
    for (int s = 0; s < 3; s++) CHECK(ct_model_train_step(m, x, y, NULL, 4, &loss) == CT_OK);
    CHECK(memcmp(enc0, enc->params[0].value, 12 * sizeof(float)) == 0 &&
          memcmp(enc0 + 12, enc->params[1].value, 3 * sizeof(float)) == 0);
    CHECK(memcmp(head0, head->params[0].value, 6 * sizeof(float)) != 0);
    /* unfreeze: values kept at their new offsets, then both train */
    float head1[6];
    memcpy(head1, head->params[0].value, sizeof head1);
    CHECK(ct_model_set_trainable(m, "enc", 1) == CT_OK);
    CHECK(m->graph->n_trainable == 4 * 16 && m->opt->n == m->graph->n_trainable && enc->trainable);
    CHECK(memcmp(enc0, enc->params[0].value, 12 * sizeof(float)) == 0 &&
          memcmp(head1, head->params[0].value, sizeof head1) == 0);
    CHECK(ct_model_train_step(m, x, y, NULL, 4, &loss) == CT_OK);
    CHECK(memcmp(enc0, enc->params[0].value, 12 * sizeof(float)) != 0);
    /* and back: the encoder stops moving again */
    CHECK(ct_model_set_trainable(m, "enc", 0) == CT_OK);
    float enc1[12];
    memcpy(enc1, enc->params[0].value, sizeof enc1);
    CHECK(ct_model_train_step(m, x, y, NULL, 4, &loss) == CT_OK);
    CHECK(memcmp(enc1, enc->params[0].value, sizeof enc1) == 0);
    CHECK_FAILS(ct_model_set_trainable(m, "nope", 1), CT_ERR_USAGE, "no layer 'nope'");
    ct_model_destroy(m);
    ct_config_free(cfg);
}

int main(void)
{
    ct_register_builtins();
    test_plugin_keys();
    test_inputs_outputs();
    test_shared_layer();
    test_frozen_layer();
    test_graph_errors();
    test_two_output_step();
    test_loss_weights_metrics();
    test_rank2_output();
    test_freeze_phases();
    return ct_test_report("test_graph");
}
