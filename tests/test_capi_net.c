/* The public model calls, public API only: models from config text, fit
 * on arrays with C callbacks that stop training and change the learning
 * rate, evaluate and predict, and the custom-loop pieces -- a loss given
 * as dL/dout matches the compiled one, accumulation over two backward
 * calls is their sum, frozen and unchosen layers keep their weights --
 * and the errors of misuse. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "ctrain.h"

static const char *text =
    "[model]\ninput = 3\n\n[h]\ntype = dense\nunits = 8\nactivation = tanh\n\n[out]\ntype = dense\nunits = 1\n\n"
    "[train]\noptimizer = sgd\nlearning_rate = 0.05\nloss = mse\nmetrics = mae\nbatch_size = 16\nseed = 3\n";

/* y = x0 - 2 x1 + 0.5 x2 */
static ct_data *make_data(int64_t n, uint64_t stream)
{
    int64_t d[2] = {n, 3};
    ct_eager *x = ct_eager_random_uniform(2, d, -1, 1, 9, stream);
    float *xv = ct_eager_data(x), *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) y[i] = xv[3 * i] - 2 * xv[3 * i + 1] + 0.5f * xv[3 * i + 2];
    int64_t xd[1] = {3};
    ct_data *out = NULL;
    ct_data_from_arrays(n, 1, xd, xv, 1, y, &out);
    ct_eager_free(x);
    free(y);
    return out;
}

typedef struct cb_state {
    int epochs_seen, batches_seen;
    double first_loss, last_loss;
} cb_state;

static ct_status on_batch(void *ctx, ct_net *n, int epoch, int64_t batch, const ct_logs *logs, int *stop)
{
    cb_state *s = ctx;
    s->batches_seen++;
    double v;
    if (!ct_logs_get(logs, "loss", &v)) return CT_ERR_RUNTIME;
    return CT_OK;
}

static ct_status on_epoch(void *ctx, ct_net *n, int epoch, const ct_logs *logs, int *stop)
{
    cb_state *s = ctx;
    double loss;
    ct_logs_get(logs, "loss", &loss);
    if (s->epochs_seen == 0) s->first_loss = loss;
    s->last_loss = loss;
    s->epochs_seen++;
    if (epoch == 3) ct_net_set_learning_rate(n, 0.01);
    if (epoch == 5) *stop = 1; /* of 100 epochs */
    return CT_OK;
}

static void test_fit_evaluate_predict(void)
{
    ct_net *n = NULL;
    CHECK(ct_net_from_text(text, "net.conf", &n) == CT_OK);
    if (!n) return;
    CHECK(ct_net_input_size(n) == 3 && ct_net_output_size(n) == 1 && ct_net_batch_size(n) == 16);
    CHECK(ct_net_metric_count(n) == 1 && !strcmp(ct_net_metric_name(n, 0), "mae"));
    ct_data *train = make_data(256, 1), *test = make_data(64, 2);
    cb_state s = {0};
    ct_net_callbacks cb = {.ctx = &s, .batch_end = on_batch, .epoch_end = on_epoch};
    CHECK(ct_net_fit(n, train, NULL, 100, &cb) == CT_OK);
    CHECK(s.epochs_seen == 6);                 /* stopped after epoch index 5 */
    CHECK(s.batches_seen == 6 * 16);
    CHECK(s.last_loss < s.first_loss);
    CHECK_NEAR(ct_net_learning_rate(n), 0.01, 1e-12);
    CHECK(ct_net_step(n) == 6 * 16);
    double loss = -1, mae = -1;
    CHECK(ct_net_evaluate(n, test, &loss, &mae, 1) == CT_OK);
    /* predictions agree with evaluate's loss (mse computed here) */
    float out[64];
    CHECK(ct_net_predict(n, ct_data_x(test), 64, out) == CT_OK);
    double mse = 0, ae = 0;
    for (int i = 0; i < 64; i++) {
        double e = out[i] - ct_data_y(test)[i];
        mse += e * e / 64;
        ae += fabs(e) / 64;
    }
    CHECK_NEAR(loss, mse, 1e-5);
    CHECK_NEAR(mae, ae, 1e-5);
    ct_data_destroy(train);
    ct_data_destroy(test);
    ct_net_destroy(n);
}

static void copy_grads(ct_net *n, float *g)
{
    int64_t k = 0;
    for (int i = 0; i < ct_net_param_count(n); i++) {
        memcpy(g + k, ct_net_param_grad(n, i), sizeof(float) * (size_t)ct_net_param_size(n, i));
        k += ct_net_param_size(n, i);
    }
}

static void test_custom_loop(void)
{
    ct_net *n = NULL;
    CHECK(ct_net_from_text(text, "net.conf", &n) == CT_OK);
    if (!n) return;
    ct_data *d = make_data(16, 3);
    const float *x = ct_data_x(d), *y = ct_data_y(d), *out;
    CHECK(ct_net_param_count(n) == 4);
    int hk = ct_net_param_find(n, "h/kernel");
    CHECK(hk == 0 && ct_net_param_size(n, hk) == 24 && ct_net_param_find(n, "nope/kernel") == -1);
    /* compiled mse vs the same loss given as dL/dout = 2 (out - y) / batch */
    float g1[64], g2[64], g3[64], dout[16];
    double loss;
    CHECK(ct_net_forward(n, x, 16, 1, &out) == CT_OK);
    CHECK(ct_net_loss(n, y, &loss) == CT_OK);
    CHECK(ct_net_backward(n, 0) == CT_OK);
    copy_grads(n, g1);
    double mse = 0;
    for (int i = 0; i < 16; i++) {
        dout[i] = 2 * (out[i] - y[i]) / 16;
        mse += (out[i] - y[i]) * (out[i] - y[i]) / 16;
    }
    CHECK_NEAR(loss, mse, 1e-5);
    CHECK(ct_net_forward(n, x, 16, 1, NULL) == CT_OK);
    CHECK(ct_net_set_output_grad(n, dout) == CT_OK);
    CHECK(ct_net_backward(n, 0) == CT_OK);
    copy_grads(n, g2);
    double worst = 0;
    for (int i = 0; i < 8 * 3 + 8 + 8 + 1; i++) worst = fmax(worst, fabs(g1[i] - g2[i]));
    CHECK_NEAR(worst, 0, 1e-6);
    /* accumulation: a second backward adds */
    CHECK(ct_net_forward(n, x, 16, 1, NULL) == CT_OK);
    CHECK(ct_net_loss(n, y, &loss) == CT_OK);
    CHECK(ct_net_backward(n, 1) == CT_OK);
    copy_grads(n, g3);
    worst = 0;
    for (int i = 0; i < 41; i++) worst = fmax(worst, fabs(g3[i] - (g1[i] + g2[i])));
    CHECK_NEAR(worst, 0, 1e-6);
    /* clipping by hand: gradients are writable */
    ct_net_param_grad(n, hk)[0] = 0;
    /* apply to one layer: the other keeps its weights */
    float h0[24], o0[8];
    memcpy(h0, ct_net_param_value(n, hk), sizeof h0);
    memcpy(o0, ct_net_param_value(n, ct_net_param_find(n, "out/kernel")), sizeof o0);
    const char *only[1] = {"out"};
    CHECK(ct_net_apply_gradients(n, 1, only) == CT_OK);
    CHECK(memcmp(h0, ct_net_param_value(n, hk), sizeof h0) == 0);
    CHECK(memcmp(o0, ct_net_param_value(n, ct_net_param_find(n, "out/kernel")), sizeof o0) != 0);
    /* freezing: apply to all leaves a frozen layer alone */
    CHECK(ct_net_set_trainable(n, "out", 0) == CT_OK);
    memcpy(o0, ct_net_param_value(n, ct_net_param_find(n, "out/kernel")), sizeof o0);
    CHECK(ct_net_forward(n, x, 16, 1, NULL) == CT_OK && ct_net_loss(n, y, &loss) == CT_OK &&
          ct_net_backward(n, 0) == CT_OK && ct_net_apply_gradients(n, 0, NULL) == CT_OK);
    CHECK(memcmp(o0, ct_net_param_value(n, ct_net_param_find(n, "out/kernel")), sizeof o0) == 0);
    CHECK(memcmp(h0, ct_net_param_value(n, hk), sizeof h0) != 0);
    CHECK(ct_net_set_trainable(n, "out", 1) == CT_OK);
    CHECK(ct_net_forward(n, x, 16, 1, NULL) == CT_OK && ct_net_loss(n, y, &loss) == CT_OK &&
          ct_net_backward(n, 0) == CT_OK && ct_net_apply_gradients(n, 0, NULL) == CT_OK);
    CHECK(memcmp(o0, ct_net_param_value(n, ct_net_param_find(n, "out/kernel")), sizeof o0) != 0);
    /* misuse */
    CHECK_FAILS(ct_net_backward(n, 0), CT_ERR_USAGE, "no output gradient");
    CHECK_FAILS(ct_net_apply_gradients(n, 1, (const char *[]){"nope"}), CT_ERR_USAGE, "no layer 'nope'");
    CHECK_FAILS(ct_net_set_trainable(n, "nope", 0), CT_ERR_USAGE, "no layer 'nope'");
    CHECK(ct_net_allreduce_grads(n) == CT_OK); /* one rank */
    ct_data_destroy(d);
    ct_net_destroy(n);
}

static void test_errors(void)
{
    ct_net *n = NULL;
    CHECK_FAILS(ct_net_from_text("[model]\ninput = 3\n\n[h]\ntype = dense\nunits = 8\nactivaton = relu\n", "bad.conf", &n),
                CT_ERR_CONFIG, "bad.conf:7", "activaton");
    CHECK(n == NULL);
    CHECK_FAILS(ct_net_load("/nonexistent/model.conf", NULL, 0, &n), CT_ERR_CONFIG, "/nonexistent/model.conf");
    ct_data *d = NULL;
    CHECK_FAILS(ct_data_load("csv", "x", NULL, &d), CT_ERR_USAGE, "format 'csv' is not one of idx, npy");
    CHECK_FAILS(ct_data_load("idx", "/nonexistent.idx", NULL, &d), CT_ERR_DATA, "/nonexistent.idx");
}

/* ---- custom losses and metrics ---------------------------------------------------------- */
static ct_status my_mse(const float *pred, const float *y, int64_t n, int64_t d, float *per_sample, float *grad)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) {
            double e = pred[i * d + j] - y[i * d + j];
            s += e * e / (double)d;
            if (grad) grad[i * d + j] = (float)(2 * e / (double)d);
        }
        per_sample[i] = (float)s;
    }
    return CT_OK;
}

static ct_eager *tape_mse(ct_eager *pred, ct_eager *y)
{
    return ct_eager_mean(ct_eager_square(ct_eager_sub(pred, y)), 1, (int[]){1}, 0);
}

static void abs_err(const float *pred, const float *y, int64_t n, int64_t d, float *v)
{
    for (int64_t i = 0; i < n; i++) v[i] = fabsf(pred[i] - y[i]);
}

static const ct_loss_def my_mse_def = {.name = "my_mse", .compute = my_mse};
static const ct_loss_def tape_mse_def = {.name = "tape_mse", .call = tape_mse};
static const ct_metric_def abs_err_def = {.name = "abs_err", .compute = abs_err};

static ct_net *with_loss(const char *loss)
{
    char t[1024];
    snprintf(t, sizeof t,
             "[model]\ninput = 3\n\n[h]\ntype = dense\nunits = 8\nactivation = tanh\n\n[out]\ntype = dense\nunits = 1\n\n"
             "[train]\noptimizer = adam\nloss = %s\nmetrics = mae, abs_err\nbatch_size = 16\nseed = 3\n",
             loss);
    ct_net *n = NULL;
    if (ct_net_from_text(t, loss, &n) != CT_OK) fprintf(stderr, "%s: %s\n", loss, ct_error_message());
    return n;
}

static void test_custom_losses(void)
{
    CHECK(ct_register_loss(&my_mse_def) == CT_OK);
    CHECK(ct_register_loss(&tape_mse_def) == CT_OK);
    CHECK(ct_register_metric(&abs_err_def) == CT_OK);
    CHECK_FAILS(ct_register_loss(&(ct_loss_def){.name = "mse", .compute = my_mse}), CT_ERR_USAGE, "built-in loss");
    CHECK_FAILS(ct_register_metric(&(ct_metric_def){.name = "bad"}), CT_ERR_USAGE, "needs a name and compute()");
    ct_net *ref = with_loss("mse"), *a = with_loss("my_mse"), *b = with_loss("tape_mse");
    CHECK(ref && a && b);
    if (!ref || !a || !b) return;
    ct_data *d = make_data(48, 4);
    ct_net *nets[3] = {ref, a, b};
    float g[3][64];
    double loss[3];
    for (int k = 0; k < 3; k++) {
        CHECK(ct_net_forward(nets[k], ct_data_x(d), 16, 1, NULL) == CT_OK);
        CHECK(ct_net_loss(nets[k], ct_data_y(d), &loss[k]) == CT_OK);
        CHECK(ct_net_backward(nets[k], 0) == CT_OK);
        copy_grads(nets[k], g[k]);
    }
    for (int k = 1; k < 3; k++) {
        CHECK_NEAR(loss[k], loss[0], 1e-6);
        double worst = 0;
        for (int i = 0; i < 41; i++) worst = fmax(worst, fabs(g[k][i] - g[0][i]));
        CHECK_MSG(worst <= 1e-6, "custom loss %d: gradients differ from mse's by %g", k, worst);
    }
    /* fit with them; the custom metric equals mae */
    double metrics[2];
    for (int k = 1; k < 3; k++) {
        CHECK(ct_net_fit(nets[k], d, NULL, 3, NULL) == CT_OK);
        CHECK(ct_net_evaluate(nets[k], d, &loss[k], metrics, 2) == CT_OK);
        CHECK(!strcmp(ct_net_metric_name(nets[k], 1), "abs_err"));
        CHECK_NEAR(metrics[1], metrics[0], 1e-6);
    }
    ct_data_destroy(d);
    for (int k = 0; k < 3; k++) ct_net_destroy(nets[k]);
}

int main(void)
{
    test_custom_losses();
    test_fit_evaluate_predict();
    test_custom_loop();
    test_errors();
    ct_eager_release_cache();
    return ct_test_report("test_capi_net");
}
