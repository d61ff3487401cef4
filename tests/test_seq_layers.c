/* The sequence layers (core/layers/: embedding, conv1d, pool1d,
 * recurrent, layer_norm, multi_head_attention, masking,
 * spatial_dropout1d, token_position): finite-difference gradients of
 * inputs and every weight, masked and unmasked, with return_sequences,
 * go_backwards, every Bidirectional merge and dropout; Keras's weight
 * shapes and names; and masks flowing through a built graph, with the
 * error a layer that takes no mask gives. Kernel outputs are compared
 * with PyTorch in test_seq_ops. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ct_test.h"
#include "graph.h"
#include "layer_harness.h"

/* A layer section parsed from text: "[l]\ntype = lstm\nunits = 3\n". */
static ct_config *parse(const char *layer_text)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "[model]\ninput = 4\n[l]\n%s", layer_text);
    ct_config *cfg = NULL;
    ct_error_clear();
    if (ct_config_parse(buf, strlen(buf), "test.conf", ".", &cfg) != CT_OK) {
        fprintf(stderr, "  config: %s\n", ct_error_message());
        return NULL;
    }
    return cfg;
}

/* Gradient check of the layer the text describes on inputs `in`, with a
 * mask on input 0 when mask != NULL (B x T floats). */
static int check_layer(const char *what, const char *text, const ct_shape *in, int n_in, int64_t batch,
                       const float *mask, const gradcheck_opts *o)
{
    ct_config *cfg = parse(text);
    if (!cfg) return 1;
    const char *type = cfg->layers[0]->type;
    ct_layer *l = make_layer(type, cfg->layers[0], in, n_in);
    int bad = 0;
    if (!l) {
        fprintf(stderr, "  %s: not built: %s\n", what, ct_error_message());
        bad = 1;
    } else {
        harness h;
        harness_setup(&h, l, batch, o);
        h.mask = mask;
        bad = gradcheck_harness(&h, o);
        teardown(&h);
    }
    ct_config_free(cfg);
    CHECK_MSG(bad == 0, "%s: %d gradients differ from finite differences", what, bad);
    return bad;
}

/* 2 samples x 5 steps: sample 0 padded after step 3, sample 1 with a hole at step 1. */
static const float mask25[10] = {1, 1, 1, 0, 0, 1, 0, 1, 1, 1};

static void test_recurrent(void)
{
    ct_shape in = ct_shape2(5, 3);
    const char *cells[] = {"simple_rnn", "lstm", "gru"};
    gradcheck_opts o = {.training = 1, .tol = 3e-3};
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 6; v++) {
            char text[512], what[128];
            const char *opts[] = {"", "return_sequences = true\n", "go_backwards = true\n",
                                  "return_sequences = true\ngo_backwards = true\n", "dropout = 0.3\nrecurrent_dropout = 0.3\n",
                                  "reset_after = false\nreturn_sequences = true\n"};
            if (v == 5 && c != 2) continue;
            snprintf(text, sizeof text, "type = %s\nunits = 3\n%s", cells[c], opts[v]);
            for (int m = 0; m < 2; m++) {
                snprintf(what, sizeof what, "%s [%s]%s", cells[c], opts[v], m ? " masked" : "");
                for (char *p = what; *p; p++)
                    if (*p == '\n') *p = ' ';
                check_layer(what, text, &in, 1, 2, m ? mask25 : NULL, &o);
            }
        }
    const char *merges[] = {"concat", "sum", "ave", "mul"};
    for (int k = 0; k < 4; k++)
        for (int rs = 0; rs < 2; rs++) {
            char text[512], what[128];
            snprintf(text, sizeof text, "type = bidirectional\nlayer = %s\nunits = 3\nmerge_mode = %s\nreturn_sequences = %s\n",
                     cells[k % 3], merges[k], rs ? "true" : "false");
            snprintf(what, sizeof what, "bidirectional %s %s%s", cells[k % 3], merges[k], rs ? " return_sequences" : "");
            check_layer(what, text, &in, 1, 2, mask25, &o);
        }
}

static void test_recurrent_weights(void)
{
    ct_config *cfg = parse("type = gru\nunits = 4\n");
    ct_shape in = ct_shape2(5, 3);
    ct_layer *l = cfg ? make_layer("gru", cfg->layers[0], &in, 1) : NULL;
    CHECK(l && l->n_params == 3);
    if (l) {
        CHECK(strcmp(l->params[0].name, "gru_cell/kernel") == 0 && l->params[0].shape.dims[1] == 12);
        CHECK(strcmp(l->params[1].name, "gru_cell/recurrent_kernel") == 0 && l->params[1].shape.dims[0] == 4);
        CHECK(l->params[2].shape.rank == 2 && l->params[2].shape.dims[0] == 2 && l->params[2].shape.dims[1] == 12);
        CHECK(l->out_shape.rank == 1 && l->out_shape.dims[0] == 4);
        layer_free(l);
    }
    ct_config_free(cfg);
    cfg = parse("type = bidirectional\nunits = 4\n");
    l = cfg ? make_layer("bidirectional", cfg->layers[0], &in, 1) : NULL;
    CHECK(l && l->n_params == 6);
    if (l) {
        CHECK(strcmp(l->params[3].name, "backward_lstm/lstm_cell/kernel") == 0 && l->params[3].shape.dims[1] == 16);
        CHECK(l->params[2].init.kind == CT_INIT_UNIT_FORGET && l->out_shape.dims[0] == 8);
        layer_free(l);
    }
    ct_config_free(cfg);
}

static void test_conv_pool_norm(void)
{
    ct_shape in = ct_shape2(9, 3);
    gradcheck_opts o = {.training = 1};
    const char *convs[] = {"padding = valid\n", "padding = same\nstrides = 2\n", "padding = causal\ndilation_rate = 2\n"};
    for (int i = 0; i < 3; i++) {
        char text[256];
        snprintf(text, sizeof text, "type = conv1d\nfilters = 4\nkernel_size = 3\n%s", convs[i]);
        check_layer(convs[i], text, &in, 1, 2, NULL, &o);
    }
    gradcheck_opts od = {.training = 1, .distinct = 1};
    check_layer("maxpool1d", "type = maxpool1d\npool_size = 2\n", &in, 1, 2, NULL, &od);
    check_layer("avgpool1d same", "type = avgpool1d\npool_size = 3\nstrides = 2\npadding = same\n", &in, 1, 2, NULL, &o);
    check_layer("global_maxpool1d", "type = global_maxpool1d\n", &in, 1, 2, NULL, &od);
    static const float mask29[18] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1};
    check_layer("global_avgpool1d", "type = global_avgpool1d\n", &in, 1, 2, NULL, &o);
    check_layer("global_avgpool1d masked", "type = global_avgpool1d\n", &in, 1, 2, mask29, &o);
    check_layer("layer_normalization", "type = layer_normalization\n", &in, 1, 2, NULL, &o);
    check_layer("spatial_dropout1d", "type = spatial_dropout1d\nrate = 0.5\n", &in, 1, 2, NULL, &o);
    check_layer("masking", "type = masking\n", &in, 1, 2, NULL, &o);
}

static void test_attention(void)
{
    gradcheck_opts o = {.training = 1, .tol = 3e-3};
    ct_shape q = ct_shape2(5, 4), v = ct_shape2(3, 6);
    check_layer("self-attention", "type = multi_head_attention\nnum_heads = 2\nkey_dim = 3\n", &q, 1, 2, NULL, &o);
    check_layer("self-attention masked causal", "type = multi_head_attention\nnum_heads = 2\nkey_dim = 3\nuse_causal_mask = true\n",
                &q, 1, 2, mask25, &o);
    ct_shape qv[2] = {q, v};
    check_layer("cross-attention value_dim dropout",
                "type = multi_head_attention\nnum_heads = 2\nkey_dim = 2\nvalue_dim = 3\ndropout = 0.3\n", qv, 2, 2, NULL, &o);
    ct_config *cfg = parse("type = multi_head_attention\nnum_heads = 2\nkey_dim = 3\n");
    ct_layer *l = cfg ? make_layer("multi_head_attention", cfg->layers[0], qv, 2) : NULL;
    CHECK(l && l->n_params == 8);
    if (l) {
        CHECK(strcmp(l->params[0].name, "query/kernel") == 0 && l->params[0].shape.rank == 3 &&
              l->params[0].shape.dims[0] == 4 && l->params[0].shape.dims[1] == 2 && l->params[0].shape.dims[2] == 3);
        CHECK(strcmp(l->params[4].name, "value/kernel") == 0 && l->params[4].shape.dims[0] == 6);
        CHECK(strcmp(l->params[6].name, "attention_output/kernel") == 0 && l->params[6].shape.dims[2] == 4);
        CHECK(l->out_shape.dims[0] == 5 && l->out_shape.dims[1] == 4);
        layer_free(l);
    }
    ct_config_free(cfg);
}

/* Embedding: the rows of the ids get the gradient; ids out of range give zeros. */
static void test_embedding(void)
{
    ct_config *cfg = parse("type = embedding\ninput_dim = 6\noutput_dim = 2\nmask_zero = true\n");
    ct_shape in = ct_shape1(4);
    ct_layer *l = cfg ? make_layer("embedding", cfg->layers[0], &in, 1) : NULL;
    CHECK(l != NULL);
    if (l) {
        CHECK(l->out_shape.rank == 2 && l->out_shape.dims[1] == 2 && strcmp(l->params[0].name, "embeddings") == 0);
        CHECK(l->params[0].init.kind == CT_INIT_RANDOM_UNIFORM && l->params[0].init.maxval == 0.05);
        harness h;
        harness_setup(&h, l, 2, NULL);
        const float ids[8] = {3, 0, 5, 3, 1, 2, 9, 0};
        memcpy(h.in[0], ids, sizeof ids);
        float mask[8];
        h.out_mask = mask;
        analytic(&h, 0);
        const float *t = l->params[0].value, *g = l->params[0].grad;
        CHECK(h.z[0] == t[6] && h.z[1] == t[7] && h.z[12] == 0 && h.z[13] == 0); /* id 9 is out of range */
        CHECK_NEAR(g[6], h.r[0] + h.r[6], 1e-6);                                   /* id 3 twice */
        CHECK(g[8] == 0 && g[9] == 0);                                             /* id 4 unused */
        CHECK(mask[0] == 1 && mask[1] == 0 && mask[7] == 0 && mask[4] == 1);
        teardown(&h);
    }
    ct_config_free(cfg);
    cfg = parse("type = token_and_position_embedding\nvocab_size = 6\nmaxlen = 4\nembed_dim = 2\n");
    l = cfg ? make_layer("token_and_position_embedding", cfg->layers[0], &in, 1) : NULL;
    CHECK(l && l->n_params == 2);
    if (l) {
        harness h;
        harness_setup(&h, l, 2, NULL);
        const float ids[8] = {3, 0, 5, 3, 1, 2, 4, 0};
        memcpy(h.in[0], ids, sizeof ids);
        analytic(&h, 0);
        const float *tok = l->params[0].value, *pos = l->params[1].value;
        CHECK_NEAR(h.z[2 * 2 + 1], tok[5 * 2 + 1] + pos[2 * 2 + 1], 1e-6);
        CHECK_NEAR(l->params[1].grad[0], h.r[0] + h.r[8], 1e-6);
        teardown(&h);
    }
    ct_config_free(cfg);
}

/* Masks through a built graph: Embedding(mask_zero) -> LSTM ->
 * (padding does not change the output), and a Conv1D refuses the mask. */
static void test_mask_flow(void)
{
    const char *good = "[model]\ninput = 6\n[emb]\ntype = embedding\ninput_dim = 10\noutput_dim = 3\nmask_zero = true\n"
                       "[rnn]\ntype = lstm\nunits = 4\n[out]\ntype = dense\nunits = 1\n[train]\nloss = mse\n";
    ct_config *cfg = NULL;
    CHECK(ct_config_parse(good, strlen(good), "mask.conf", ".", &cfg) == CT_OK);
    ct_graph *g = NULL;
    if (cfg) CHECK(ct_graph_build(cfg, 1, &g) == CT_OK);
    if (g && ct_graph_plan(g, 2) == CT_OK) {
        /* the same tokens with the padding elsewhere: masked steps carry the state */
        const float x[12] = {4, 7, 2, 0, 0, 0, 4, 0, 7, 0, 0, 2};
        const float y[12] = {4, 7, 2, 0, 0, 0, 4, 7, 0, 0, 0, 0};
        ct_graph_forward(g, x, 2, 0, 0, 1);
        float a = ct_graph_output(g)->y[0], b = ct_graph_output(g)->y[1];
        CHECK_NEAR(a, b, 1e-6);
        ct_graph_forward(g, y, 2, 0, 0, 1);
        CHECK(fabsf(ct_graph_output(g)->y[0] - ct_graph_output(g)->y[1]) > 1e-7);
    }
    ct_graph_destroy(g);
    ct_config_free(cfg);
    const char *bad = "[model]\ninput = 6\n[emb]\ntype = embedding\ninput_dim = 10\noutput_dim = 3\nmask_zero = true\n"
                      "[conv]\ntype = conv1d\nfilters = 2\nkernel_size = 3\n[train]\nloss = mse\n";
    cfg = NULL;
    CHECK(ct_config_parse(bad, strlen(bad), "bad.conf", ".", &cfg) == CT_OK);
    g = NULL;
    if (cfg) CHECK_FAILS(ct_graph_build(cfg, 1, &g), CT_ERR_CONFIG, "bad.conf:8", "conv1d", "does not support masking", "emb");
    ct_graph_destroy(g);
    ct_config_free(cfg);
}

int main(void)
{
    ct_register_builtins();
    test_recurrent();
    test_recurrent_weights();
    test_conv_pool_norm();
    test_attention();
    test_embedding();
    test_mask_flow();
    return ct_test_report("test_seq_layers");
}
