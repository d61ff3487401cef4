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

int main(void)
{
    ct_register_builtins();
    test_plugin_keys();
    test_inputs_outputs();
    test_shared_layer();
    test_frozen_layer();
    test_graph_errors();
    return ct_test_report("test_graph");
}
