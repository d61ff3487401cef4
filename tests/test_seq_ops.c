/* The sequence kernels (ops/seq_ops.h) and Conv1D's use of the conv2d
 * kernels: forward outputs and gradients against PyTorch 1.13
 * (tests/tools/seq_reference.py, computed at test time on the same
 * weights and inputs, in float64), and gradients against central finite
 * differences for what PyTorch does not have (dropout masks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "ct_test.h"
#include "rng.h"
#include "seq_ops.h"
#include "tmpfiles.h"

static uint64_t draws = 1;
static float *rnd(int64_t n, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (size_t)(n + 1));
    ct_rng r = ct_rng_make(5, CT_RNG_TEST, draws++);
    ct_rng_fill_uniform(&r, 0, lo, hi, v, n);
    return v;
}

/* ---- the case file for the reference script ------------------------------ */

static FILE *cases;
static void put_case(const char *kind, const int *p, int np, int na)
{
    char k[16] = {0};
    strncpy(k, kind, 15);
    fwrite(k, 1, 16, cases);
    fwrite(&np, 4, 1, cases);
    fwrite(p, 4, (size_t)np, cases);
    fwrite(&na, 4, 1, cases);
}
static void put_array(const char *name, const float *v, int64_t n)
{
    char k[16] = {0};
    strncpy(k, name, 15);
    fwrite(k, 1, 16, cases);
    fwrite(&n, 8, 1, cases);
    fwrite(v, 4, (size_t)n, cases);
}

typedef struct answer {
    int n;
    char name[16][16];
    int64_t len[16];
    float *v[16];
} answer;

static int read_answer(FILE *f, answer *a)
{
    memset(a, 0, sizeof *a);
    if (fread(&a->n, 4, 1, f) != 1 || a->n > 16) return 0;
    for (int i = 0; i < a->n; i++) {
        if (fread(a->name[i], 1, 16, f) != 16 || fread(&a->len[i], 8, 1, f) != 1) return 0;
        a->v[i] = malloc(sizeof(float) * (size_t)(a->len[i] + 1));
        if (fread(a->v[i], 4, (size_t)a->len[i], f) != (size_t)a->len[i]) return 0;
    }
    return 1;
}
static void answer_free(answer *a)
{
    for (int i = 0; i < a->n; i++) free(a->v[i]);
}

/* Compare ours with the reference's array `name` (relative-absolute 1e-4). */
static void compare(const answer *a, const char *what, const char *name, const float *ours, int64_t n)
{
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->name[i], name) != 0) continue;
        CHECK_MSG(a->len[i] == n, "%s %s: %lld values, reference %lld", what, name, (long long)n, (long long)a->len[i]);
        if (a->len[i] != n) return;
        int bad = 0;
        double worst = 0;
        for (int64_t k = 0; k < n; k++) {
            double d = fabs((double)ours[k] - a->v[i][k]) / (1 + fabs(a->v[i][k]));
            if (d > worst) worst = d;
            if (d > 1e-4 && bad++ < 3)
                fprintf(stderr, "  %s %s[%lld]: ours %.7g reference %.7g\n", what, name, (long long)k, ours[k], a->v[i][k]);
        }
        CHECK_MSG(bad == 0, "%s %s: %d of %lld values differ from PyTorch (worst %.3g)", what, name, bad, (long long)n, worst);
        return;
    }
    CHECK_MSG(0, "%s: the reference gave no %s", what, name);
}

/* ---- recurrent cases -------------------------------------------------------- */

typedef struct rnn_case {
    ct_rnn_desc d;
    int mask;
    float *x, *m, *W, *U, *b, *R1, *R2, *R3, *idrop, *rdrop;
    /* ours */
    float *seq, *h, *c, *saved, *scratch, *dx, *dW, *dU, *db;
    char what[96];
} rnn_case;

static int64_t rnn_bias_n(const ct_rnn_desc *d) { return (d->cell == CT_RNN_GRU && d->reset_after ? 2 : 1) * d->cell * d->units; }

static void rnn_make(rnn_case *c, ct_rnn_cell cell, int reset_after, int backwards, int zero_out, int mask, int drop)
{
    memset(c, 0, sizeof *c);
    c->d = (ct_rnn_desc){cell, 2, 5, 3, 4, CT_ACT_TANH, CT_ACT_SIGMOID, reset_after, backwards, zero_out, drop, drop};
    const ct_rnn_desc *d = &c->d;
    int64_t B = d->batch, T = d->steps, Fi = d->in, u = d->units, G = cell * u;
    snprintf(c->what, sizeof c->what, "%s%s%s%s%s%s", cell == CT_RNN_LSTM ? "lstm" : cell == CT_RNN_GRU ? "gru" : "simple_rnn",
             cell == CT_RNN_GRU ? (reset_after ? " reset_after" : " reset_before") : "", backwards ? " go_backwards" : "",
             zero_out ? " zero_output" : "", mask ? " masked" : "", drop ? " dropout" : "");
    c->mask = mask;
    c->x = rnd(B * T * Fi, -1, 1);
    c->m = rnd(B * T, 0, 1);
    /* a padded tail on sample 0, a hole in sample 1 */
    for (int64_t t = 0; t < T; t++) c->m[t] = t < 3 ? 1.0f : 0.0f, c->m[T + t] = t == 1 ? 0.0f : 1.0f;
    c->W = rnd(Fi * G, -0.6f, 0.6f), c->U = rnd(u * G, -0.6f, 0.6f), c->b = rnd(rnn_bias_n(d), -0.3f, 0.3f);
    c->R1 = rnd(B * T * u, -1, 1), c->R2 = rnd(B * u, -1, 1), c->R3 = rnd(B * u, -1, 1);
    if (drop) {
        c->idrop = rnd(B * Fi, 0, 1), c->rdrop = rnd(B * u, 0, 1);
        for (int64_t k = 0; k < B * Fi; k++) c->idrop[k] = c->idrop[k] < 0.3f ? 0.0f : 1.0f / 0.7f;
        for (int64_t k = 0; k < B * u; k++) c->rdrop[k] = c->rdrop[k] < 0.3f ? 0.0f : 1.0f / 0.7f;
    }
    c->seq = calloc((size_t)(B * T * u), 4), c->h = calloc((size_t)(B * u), 4), c->c = calloc((size_t)(B * u), 4);
    c->saved = calloc((size_t)(B * ct_rnn_saved(d) + 1), 4), c->scratch = calloc((size_t)(B * ct_rnn_scratch(d) + 1), 4);
    c->dx = calloc((size_t)(B * T * Fi), 4), c->dW = calloc((size_t)(Fi * G), 4), c->dU = calloc((size_t)(u * G), 4);
    c->db = calloc((size_t)rnn_bias_n(d), 4);
}

static void rnn_free(rnn_case *c)
{
    float *p[] = {c->x, c->m, c->W, c->U, c->b, c->R1, c->R2, c->R3, c->idrop, c->rdrop, c->seq, c->h,
                  c->c, c->saved, c->scratch, c->dx, c->dW, c->dU, c->db};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

static double rnn_loss(rnn_case *c)
{
    const ct_rnn_desc *d = &c->d;
    ct_rnn_weights w = {c->W, c->U, c->b};
    ct_op_rnn_fwd(d, &w, c->x, c->mask ? c->m : NULL, c->idrop, c->rdrop, c->seq, c->h, c->c, c->saved, c->scratch);
    int64_t B = d->batch, T = d->steps, u = d->units;
    double s = 0;
    for (int64_t k = 0; k < B * T * u; k++) s += (double)c->seq[k] * c->R1[k];
    for (int64_t k = 0; k < B * u; k++) s += (double)c->h[k] * c->R2[k] + (d->cell == CT_RNN_LSTM ? (double)c->c[k] * c->R3[k] : 0);
    return s;
}

static void rnn_backward(rnn_case *c)
{
    const ct_rnn_desc *d = &c->d;
    ct_rnn_weights w = {c->W, c->U, c->b};
    ct_rnn_grads g = {c->dW, c->dU, c->db};
    rnn_loss(c);
    ct_op_rnn_bwd(d, &w, c->x, c->mask ? c->m : NULL, c->idrop, c->rdrop, c->R1, c->R2, d->cell == CT_RNN_LSTM ? c->R3 : NULL,
                  c->saved, c->scratch, c->dx, &g);
}

/* Central differences of rnn_loss over every element of v against g. */
static int fd_check(rnn_case *c, float *v, const float *g, int64_t n, const char *name)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + 1e-2f;
        double lp = rnn_loss(c);
        v[i] = keep - 1e-2f;
        double lm = rnn_loss(c);
        v[i] = keep;
        double num = (lp - lm) / 2e-2;
        if (fabs(num - g[i]) > 3e-3 * (1 + fabs(num))) {
            if (bad++ < 3) fprintf(stderr, "  %s %s[%lld]: analytic %.6g numeric %.6g\n", c->what, name, (long long)i, g[i], num);
        }
    }
    return bad;
}

static void rnn_gradcheck(rnn_case *c)
{
    const ct_rnn_desc *d = &c->d;
    int64_t B = d->batch, T = d->steps, Fi = d->in, u = d->units, G = d->cell * u;
    memset(c->dx, 0, sizeof(float) * (size_t)(B * T * Fi)), memset(c->dW, 0, sizeof(float) * (size_t)(Fi * G));
    memset(c->dU, 0, sizeof(float) * (size_t)(u * G)), memset(c->db, 0, sizeof(float) * (size_t)rnn_bias_n(d));
    rnn_backward(c);
    float *gx = malloc(sizeof(float) * (size_t)(B * T * Fi)), *gW = malloc(sizeof(float) * (size_t)(Fi * G));
    float *gU = malloc(sizeof(float) * (size_t)(u * G)), *gb = malloc(sizeof(float) * (size_t)rnn_bias_n(d));
    memcpy(gx, c->dx, sizeof(float) * (size_t)(B * T * Fi)), memcpy(gW, c->dW, sizeof(float) * (size_t)(Fi * G));
    memcpy(gU, c->dU, sizeof(float) * (size_t)(u * G)), memcpy(gb, c->db, sizeof(float) * (size_t)rnn_bias_n(d));
    int bad = fd_check(c, c->x, gx, B * T * Fi, "x") + fd_check(c, c->W, gW, Fi * G, "kernel") +
              fd_check(c, c->U, gU, u * G, "recurrent_kernel") + fd_check(c, c->b, gb, rnn_bias_n(d), "bias");
    CHECK_MSG(bad == 0, "%s: %d gradients differ from finite differences", c->what, bad);
    free(gx), free(gW), free(gU), free(gb);
}

static void rnn_put(const rnn_case *c)
{
    const ct_rnn_desc *d = &c->d;
    int64_t B = d->batch, T = d->steps, Fi = d->in, u = d->units, G = d->cell * u;
    int p[] = {d->cell, (int)B, (int)T, (int)Fi, (int)u, d->reset_after, d->go_backwards, d->zero_output_for_mask, c->mask};
    put_case("rnn", p, 9, 9);
    put_array("x", c->x, B * T * Fi), put_array("mask", c->m, B * T), put_array("kernel", c->W, Fi * G);
    put_array("rec", c->U, u * G), put_array("bias", c->b, rnn_bias_n(d)), put_array("dseq", c->R1, B * T * u);
    put_array("dh", c->R2, B * u), put_array("dc", c->R3, B * u), put_array("unused", c->R3, 0);
}

static void rnn_compare(rnn_case *c, const answer *a)
{
    const ct_rnn_desc *d = &c->d;
    int64_t B = d->batch, T = d->steps, Fi = d->in, u = d->units, G = d->cell * u;
    memset(c->dx, 0, sizeof(float) * (size_t)(B * T * Fi)), memset(c->dW, 0, sizeof(float) * (size_t)(Fi * G));
    memset(c->dU, 0, sizeof(float) * (size_t)(u * G)), memset(c->db, 0, sizeof(float) * (size_t)rnn_bias_n(d));
    rnn_backward(c);
    compare(a, c->what, "seq", c->seq, B * T * u);
    compare(a, c->what, "h", c->h, B * u);
    if (d->cell == CT_RNN_LSTM) compare(a, c->what, "c", c->c, B * u);
    compare(a, c->what, "dx", c->dx, B * T * Fi);
    compare(a, c->what, "dkernel", c->dW, Fi * G);
    compare(a, c->what, "drec", c->dU, u * G);
    compare(a, c->what, "dbias", c->db, rnn_bias_n(d));
}

/* ---- attention, layer norm, conv1d ------------------------------------------ */

typedef struct attn_case {
    ct_attn_desc d;
    int kmask;
    float *q, *k, *v, *km, *R, *o, *saved, *scratch, *dq, *dk, *dv, *drop;
    char what[64];
} attn_case;

static void attn_make(attn_case *c, int causal, int kmask, int drop)
{
    memset(c, 0, sizeof *c);
    c->d = (ct_attn_desc){2, 4, causal ? 4 : 3, 2, 3, 2, causal, 1.0f / sqrtf(3.0f)};
    const ct_attn_desc *d = &c->d;
    snprintf(c->what, sizeof c->what, "attention%s%s%s", causal ? " causal" : "", kmask ? " key-masked" : "", drop ? " dropout" : "");
    int64_t B = d->batch, H = d->heads;
    c->kmask = kmask;
    c->q = rnd(B * d->tq * H * d->key_dim, -1, 1), c->k = rnd(B * d->tv * H * d->key_dim, -1, 1);
    c->v = rnd(B * d->tv * H * d->value_dim, -1, 1), c->R = rnd(B * d->tq * H * d->value_dim, -1, 1);
    c->km = rnd(B * d->tv, 0, 1);
    for (int64_t j = 0; j < B * d->tv; j++) c->km[j] = j == 1 || j == d->tv + d->tv - 1 ? 0.0f : 1.0f;
    if (drop) {
        c->drop = rnd(B * H * d->tq * d->tv, 0, 1);
        for (int64_t j = 0; j < B * H * d->tq * d->tv; j++) c->drop[j] = c->drop[j] < 0.25f ? 0.0f : 1 / 0.75f;
    }
    c->o = calloc((size_t)(B * d->tq * H * d->value_dim), 4);
    c->saved = calloc((size_t)(B * ct_attn_saved(d)), 4), c->scratch = calloc((size_t)(B * ct_attn_scratch(d)), 4);
    c->dq = calloc((size_t)(B * d->tq * H * d->key_dim), 4), c->dk = calloc((size_t)(B * d->tv * H * d->key_dim), 4);
    c->dv = calloc((size_t)(B * d->tv * H * d->value_dim), 4);
}

static void attn_free(attn_case *c)
{
    float *p[] = {c->q, c->k, c->v, c->km, c->R, c->o, c->saved, c->scratch, c->dq, c->dk, c->dv, c->drop};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

static double attn_loss(attn_case *c)
{
    const ct_attn_desc *d = &c->d;
    ct_op_attention_fwd(d, c->q, c->k, c->v, c->kmask ? c->km : NULL, NULL, c->drop, c->o, c->saved);
    double s = 0;
    for (int64_t j = 0; j < d->batch * d->tq * d->heads * d->value_dim; j++) s += (double)c->o[j] * c->R[j];
    return s;
}

static void attn_backward(attn_case *c)
{
    const ct_attn_desc *d = &c->d;
    attn_loss(c);
    ct_op_attention_bwd(d, c->q, c->k, c->v, c->drop, c->R, c->saved, c->dq, c->dk, c->dv, c->scratch);
}

static int attn_fd(attn_case *c, float *v, const float *g, int64_t n, const char *name)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + 1e-2f;
        double lp = attn_loss(c);
        v[i] = keep - 1e-2f;
        double lm = attn_loss(c);
        v[i] = keep;
        double num = (lp - lm) / 2e-2;
        if (fabs(num - g[i]) > 3e-3 * (1 + fabs(num)) && bad++ < 3)
            fprintf(stderr, "  %s %s[%lld]: analytic %.6g numeric %.6g\n", c->what, name, (long long)i, g[i], num);
    }
    return bad;
}

static void test_attention_fd(void)
{
    attn_case c;
    attn_make(&c, 1, 1, 1);
    attn_backward(&c);
    const ct_attn_desc *d = &c.d;
    int64_t nq = d->batch * d->tq * d->heads * d->key_dim, nk = d->batch * d->tv * d->heads * d->key_dim;
    int64_t nv = d->batch * d->tv * d->heads * d->value_dim;
    float *gq = malloc(4 * (size_t)nq), *gk = malloc(4 * (size_t)nk), *gv = malloc(4 * (size_t)nv);
    memcpy(gq, c.dq, 4 * (size_t)nq), memcpy(gk, c.dk, 4 * (size_t)nk), memcpy(gv, c.dv, 4 * (size_t)nv);
    int bad = attn_fd(&c, c.q, gq, nq, "q") + attn_fd(&c, c.k, gk, nk, "k") + attn_fd(&c, c.v, gv, nv, "v");
    CHECK_MSG(bad == 0, "%s: %d gradients differ from finite differences", c.what, bad);
    free(gq), free(gk), free(gv);
    attn_free(&c);
}

typedef struct ln_case {
    int64_t rows, c;
    float *x, *g, *b, *R, *y, *st, *dx, *dg, *db;
} ln_case;

typedef struct conv_case {
    int B, T, C, Fo, k, s, d, pad;
    ct_conv2d_geom g;
    float *x, *W, *b, *R, *y, *dx, *dW, *db, *scratch;
    char what[64];
} conv_case;

/* Conv1D as the layer runs it: a (1, T) image, kernel (1, k, C, F);
 * causal pads (k - 1) * d zeros on the left. */
static void conv_make(conv_case *c, int T, int k, int s, int d, int pad)
{
    memset(c, 0, sizeof *c);
    c->B = 2, c->T = T, c->C = 3, c->Fo = 4, c->k = k, c->s = s, c->d = d, c->pad = pad;
    snprintf(c->what, sizeof c->what, "conv1d k%d s%d d%d %s", k, s, d, pad == 0 ? "valid" : pad == 1 ? "same" : "causal");
    ct_conv_window w = {1, k, 1, s, 1, d, pad == 1};
    c->g = ct_conv2d_geom_make(&w, 1, T, c->C, c->Fo);
    if (pad == 2) c->g.ow = (T - 1) / s + 1, c->g.pl = (k - 1) * d;
    c->g.batch = c->B;
    int64_t nx = (int64_t)c->B * T * c->C, ny = (int64_t)c->B * c->g.ow * c->Fo;
    c->x = rnd(nx, -1, 1), c->W = rnd((int64_t)k * c->C * c->Fo, -0.5f, 0.5f), c->b = rnd(c->Fo, -0.5f, 0.5f);
    c->R = rnd(ny, -1, 1), c->y = calloc((size_t)ny, 4), c->dx = calloc((size_t)nx, 4);
    c->dW = calloc((size_t)(k * c->C * c->Fo), 4), c->db = calloc((size_t)c->Fo, 4);
    c->scratch = calloc((size_t)ct_op_conv2d_scratch(&c->g) + 16, 4);
    ct_op_conv2d_fwd(&c->g, c->x, c->W, c->b, c->y, 0, c->scratch);
    ct_op_conv2d_bwd(&c->g, c->x, c->R, c->W, c->dx, c->dW, c->scratch);
    ct_op_conv2d_bias_grad(c->R, c->db, (int64_t)c->B * c->g.ow, c->Fo);
}

int main(void)
{
    char in_path[512], out_path[512], cmd[1400];
    CHECK(tmp_make("seq_ops"));
    (void)write_file;
    snprintf(in_path, sizeof in_path, "%s", tmp_path("cases.bin"));
    snprintf(out_path, sizeof out_path, "%s", tmp_path("answers.bin"));
    cases = fopen(in_path, "wb");

    /* every cell and option against PyTorch */
    enum { NR = 13 };
    static rnn_case rc[NR];
    int n = 0;
    rnn_make(&rc[n++], CT_RNN_SIMPLE, 0, 0, 0, 0, 0);
    rnn_make(&rc[n++], CT_RNN_SIMPLE, 0, 1, 0, 1, 0);
    rnn_make(&rc[n++], CT_RNN_LSTM, 0, 0, 0, 0, 0);
    rnn_make(&rc[n++], CT_RNN_LSTM, 0, 0, 0, 1, 0);
    rnn_make(&rc[n++], CT_RNN_LSTM, 0, 1, 1, 1, 0);
    rnn_make(&rc[n++], CT_RNN_LSTM, 0, 1, 0, 0, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 1, 0, 0, 0, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 1, 0, 0, 1, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 1, 1, 1, 1, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 0, 0, 0, 0, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 0, 0, 0, 1, 0);
    rnn_make(&rc[n++], CT_RNN_GRU, 0, 1, 1, 1, 0);
    rnn_make(&rc[n++], CT_RNN_SIMPLE, 0, 0, 1, 1, 0);
    for (int i = 0; i < NR; i++) rnn_put(&rc[i]);

    attn_case ac[3];
    attn_make(&ac[0], 0, 0, 0);
    attn_make(&ac[1], 0, 1, 0);
    attn_make(&ac[2], 1, 1, 0);
    for (int i = 0; i < 3; i++) {
        const ct_attn_desc *d = &ac[i].d;
        int p[] = {(int)d->batch, (int)d->tq, (int)d->tv, (int)d->heads, (int)d->key_dim, (int)d->value_dim, d->causal, ac[i].kmask};
        int64_t B = d->batch, H = d->heads;
        put_case("attention", p, 8, 5);
        put_array("q", ac[i].q, B * d->tq * H * d->key_dim), put_array("k", ac[i].k, B * d->tv * H * d->key_dim);
        put_array("v", ac[i].v, B * d->tv * H * d->value_dim), put_array("kmask", ac[i].km, B * d->tv);
        put_array("dout", ac[i].R, B * d->tq * H * d->value_dim);
    }

    ln_case ln = {.rows = 5, .c = 7};
    ln.x = rnd(35, -3, 3), ln.g = rnd(7, 0.5f, 1.5f), ln.b = rnd(7, -1, 1), ln.R = rnd(35, -1, 1);
    ln.y = calloc(35, 4), ln.st = calloc(10, 4), ln.dx = calloc(35, 4), ln.dg = calloc(7, 4), ln.db = calloc(7, 4);
    {
        int p[] = {5, 7};
        put_case("layer_norm", p, 2, 4);
        put_array("x", ln.x, 35), put_array("gamma", ln.g, 7), put_array("beta", ln.b, 7), put_array("dy", ln.R, 35);
    }
    enum { NC = 6 };
    conv_case cc[NC];
    conv_make(&cc[0], 9, 3, 1, 1, 0);
    conv_make(&cc[1], 9, 3, 2, 1, 1);
    conv_make(&cc[2], 10, 4, 1, 1, 1);
    conv_make(&cc[3], 9, 3, 1, 2, 2);
    conv_make(&cc[4], 9, 2, 1, 3, 0);
    conv_make(&cc[5], 8, 3, 2, 2, 2);
    for (int i = 0; i < NC; i++) {
        conv_case *c = &cc[i];
        int p[] = {c->B, c->T, c->C, c->Fo, c->k, c->s, c->d, c->pad};
        put_case("conv1d", p, 8, 4);
        put_array("x", c->x, (int64_t)c->B * c->T * c->C), put_array("kernel", c->W, (int64_t)c->k * c->C * c->Fo);
        put_array("bias", c->b, c->Fo), put_array("dy", c->R, (int64_t)c->B * c->g.ow * c->Fo);
    }
    fclose(cases);

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/tools/seq_reference.py %s %s", CT_SOURCE_DIR, in_path, out_path);
    int rc_py = system(cmd);
    CHECK_MSG(rc_py == 0, "the PyTorch reference failed (%s): install python3-torch", cmd);
    FILE *ans = rc_py == 0 ? fopen(out_path, "rb") : NULL;
    CHECK(ans != NULL);
    answer a;
    for (int i = 0; ans && i < NR; i++) {
        CHECK(read_answer(ans, &a));
        rnn_compare(&rc[i], &a);
        answer_free(&a);
    }
    for (int i = 0; ans && i < 3; i++) {
        CHECK(read_answer(ans, &a));
        attn_backward(&ac[i]);
        const ct_attn_desc *d = &ac[i].d;
        int64_t B = d->batch, H = d->heads;
        compare(&a, ac[i].what, "o", ac[i].o, B * d->tq * H * d->value_dim);
        compare(&a, ac[i].what, "dq", ac[i].dq, B * d->tq * H * d->key_dim);
        compare(&a, ac[i].what, "dk", ac[i].dk, B * d->tv * H * d->key_dim);
        compare(&a, ac[i].what, "dv", ac[i].dv, B * d->tv * H * d->value_dim);
        answer_free(&a);
    }
    if (ans) {
        CHECK(read_answer(ans, &a));
        ct_op_layer_norm_fwd(ln.x, ln.g, ln.b, 1e-3f, ln.y, ln.st, 5, 7);
        ct_op_layer_norm_bwd(ln.x, ln.g, ln.R, ln.st, ln.dx, ln.dg, ln.db, 5, 7);
        compare(&a, "layer_norm", "y", ln.y, 35);
        compare(&a, "layer_norm", "dx", ln.dx, 35);
        compare(&a, "layer_norm", "dgamma", ln.dg, 7);
        compare(&a, "layer_norm", "dbeta", ln.db, 7);
        answer_free(&a);
    }
    for (int i = 0; ans && i < NC; i++) {
        conv_case *c = &cc[i];
        CHECK(read_answer(ans, &a));
        int64_t nx = (int64_t)c->B * c->T * c->C, ny = (int64_t)c->B * c->g.ow * c->Fo;
        compare(&a, c->what, "y", c->y, ny);
        compare(&a, c->what, "dx", c->dx, nx);
        compare(&a, c->what, "dkernel", c->dW, (int64_t)c->k * c->C * c->Fo);
        compare(&a, c->what, "dbias", c->db, c->Fo);
        answer_free(&a);
    }
    if (ans) fclose(ans);

    /* finite differences: the masked variants and dropout, which PyTorch lacks */
    for (int i = 0; i < NR; i++)
        if (rc[i].mask) rnn_gradcheck(&rc[i]);
    ct_rnn_cell cells[] = {CT_RNN_SIMPLE, CT_RNN_LSTM, CT_RNN_GRU, CT_RNN_GRU};
    for (int i = 0; i < 4; i++) {
        rnn_case c;
        rnn_make(&c, cells[i], i == 2, i == 1, 0, 1, 1);
        rnn_gradcheck(&c);
        rnn_free(&c);
    }
    test_attention_fd();

    for (int i = 0; i < NR; i++) rnn_free(&rc[i]);
    for (int i = 0; i < 3; i++) attn_free(&ac[i]);
    for (int i = 0; i < NC; i++) {
        conv_case *c = &cc[i];
        free(c->x), free(c->W), free(c->b), free(c->R), free(c->y), free(c->dx), free(c->dW), free(c->db), free(c->scratch);
    }
    free(ln.x), free(ln.g), free(ln.b), free(ln.R), free(ln.y), free(ln.st), free(ln.dx), free(ln.dg), free(ln.db);
    tmp_remove();
    return ct_test_report("test_seq_ops");
}
