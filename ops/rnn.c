/* Recurrent kernels: SimpleRNN, LSTM and GRU (both reset_after
 * conventions), forward and backpropagation through time.
 *
 * The input projection of every step is one sgemm over the whole
 * sequence (B*T rows) before the recurrence, and the weight gradients are
 * one sgemm each after it; only h' U (B rows) runs per step. Step t's rows
 * live at stride T*G*u in the (B, T, G*u) buffers, so the per-step sgemm
 * reads and writes them in place through its leading dimension. The
 * recurrence runs on one thread (OpenMP's thread count is set to 1 around
 * it, which OpenBLAS follows): its sgemms are too small to share, and a
 * parallel region per step costs more than the step, all the more on a
 * loaded machine where a descheduled thread stalls every barrier.
 *
 * Saved per sample, indexed by time step (not processing order):
 *   A (T, G*u)  activated gates (LSTM i f g o, GRU z r n, SimpleRNN h)
 *   E (T, u)    LSTM: c; GRU: reset_after rh = h' U_h + b_rh, else r * h'
 *   H (T, u)    the state after the step
 *   TC (T, u)   LSTM: act(c), so backward need not compute it again
 *   Xd (T, F)   x * in_drop (only with dropout)
 * Masked steps copy the state into C and H, so the backward pass needs no
 * special case beyond zero gate gradients and a pass-through. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "seq_ops.h"

static inline float sigm(float z)
{
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

/* tanh through one expf (glibc's tanhf goes through expm1f and is several
 * times slower); below 0.004 the cubic term keeps the relative error
 * small where 1 - t cancels. Absolute error < 1e-7. */
static inline float fast_tanh(float z)
{
    float a = fabsf(z);
    if (a < 0.004f) return z * (1.0f - z * z * (1.0f / 3.0f));
    float t = expf(-2.0f * a), r = (1.0f - t) / (1.0f + t);
    return z < 0 ? -r : r;
}

static inline float act_f(ct_activation a, float z)
{
    switch (a) {
    case CT_ACT_TANH: return fast_tanh(z);
    case CT_ACT_SIGMOID: return sigm(z);
    case CT_ACT_RELU: return z > 0 ? z : 0;
    case CT_ACT_HARD_SIGMOID: return z < -2.5f ? 0.0f : z > 2.5f ? 1.0f : 0.2f * z + 0.5f;
    default: return z;
    }
}

/* d act / dz written in terms of y = act(z). */
static inline float act_d(ct_activation a, float y)
{
    switch (a) {
    case CT_ACT_TANH: return 1 - y * y;
    case CT_ACT_SIGMOID: return y * (1 - y);
    case CT_ACT_RELU: return y > 0 ? 1.0f : 0.0f;
    case CT_ACT_HARD_SIGMOID: return y > 0 && y < 1 ? 0.2f : 0.0f;
    default: return 1;
    }
}

int ct_rnn_activation_ok(ct_activation a)
{
    return a == CT_ACT_LINEAR || a == CT_ACT_TANH || a == CT_ACT_SIGMOID || a == CT_ACT_RELU ||
           a == CT_ACT_HARD_SIGMOID;
}

static int64_t gates(const ct_rnn_desc *d) { return (int64_t)d->cell * d->units; }

int64_t ct_rnn_saved(const ct_rnn_desc *d)
{
    int64_t T = d->steps, u = d->units;
    return T * (gates(d) + 2 * u) + (d->cell == CT_RNN_LSTM ? T * u : 0) + (d->dropout ? T * d->in : 0);
}

int64_t ct_rnn_scratch(const ct_rnn_desc *d)
{
    int64_t T = d->steps, u = d->units, G = gates(d);
    return 2 * T * G + T * u + (d->dropout ? T * d->in : 0) + 6 * u + 2 * G;
}

/* C (M, N; ldc) = alpha A B + beta C with explicit leading dimensions. */
static void gemm_ld(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, 1.0f, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

typedef struct rnn_view {
    int64_t B, T, F, u, G;
    float *A, *E, *H, *TC, *Xd;
} rnn_view;

static rnn_view view_of(const ct_rnn_desc *d, float *saved)
{
    rnn_view v = {d->batch, d->steps, d->in, d->units, gates(d), 0, 0, 0, 0, 0};
    v.A = saved;
    v.E = v.A + v.B * v.T * v.G;
    v.H = v.E + v.B * v.T * v.u;
    v.TC = d->cell == CT_RNN_LSTM ? v.H + v.B * v.T * v.u : NULL; /* act(c), for backward */
    float *end = v.H + v.B * v.T * v.u + (v.TC ? v.B * v.T * v.u : 0);
    v.Xd = d->dropout ? end : NULL;
    return v;
}

static inline int64_t time_of(const ct_rnn_desc *d, int64_t s) { return d->go_backwards ? d->steps - 1 - s : s; }

/* One step's elementwise work for row b. a: gates of (b, t) (pre-activation
 * in, activated out); r: the recurrent part where the cell keeps it apart
 * (GRU); hp, cp: the state before; h, c, e: the state after and E. */
static inline void step_row(const ct_rnn_desc *d, float *a, const float *r, const float *hp, const float *cp,
                            float *h, float *c, float *e, float *tc)
{
    const int64_t u = d->units;
    switch (d->cell) {
    case CT_RNN_SIMPLE:
        for (int64_t j = 0; j < u; j++) h[j] = a[j] = act_f(d->act, a[j]);
        break;
    case CT_RNN_LSTM:
        for (int64_t j = 0; j < u; j++) {
            float i = act_f(d->rec_act, a[j]), f = act_f(d->rec_act, a[u + j]);
            float g = act_f(d->act, a[2 * u + j]), o = act_f(d->rec_act, a[3 * u + j]);
            a[j] = i, a[u + j] = f, a[2 * u + j] = g, a[3 * u + j] = o;
            c[j] = e[j] = f * cp[j] + i * g;
            tc[j] = act_f(d->act, c[j]);
            h[j] = o * tc[j];
        }
        break;
    case CT_RNN_GRU:
        for (int64_t j = 0; j < u; j++) {
            float z = act_f(d->rec_act, a[j] + r[j]), rr = act_f(d->rec_act, a[u + j] + r[u + j]);
            a[j] = z, a[u + j] = rr;
            if (d->reset_after) {
                e[j] = r[2 * u + j];
                a[2 * u + j] = act_f(d->act, a[2 * u + j] + rr * e[j]);
            }
            /* reset_before: the caller finished a[2u..] with (r h') U_h */
            h[j] = z * hp[j] + (1 - z) * (d->reset_after ? a[2 * u + j] : 0);
        }
        break;
    }
}

void ct_op_rnn_fwd(const ct_rnn_desc *d, const ct_rnn_weights *w, const float *x, const float *mask,
                   const float *in_drop, const float *rec_drop, float *seq, float *h_last, float *c_last,
                   float *saved, float *scratch)
{
    rnn_view v = view_of(d, saved);
    const int64_t B = v.B, T = v.T, F = v.F, u = v.u, G = v.G;
    const int gru_rb = d->cell == CT_RNN_GRU && !d->reset_after;
    float *hcur = scratch, *ccur = hcur + B * u, *hin = ccur + B * u, *R = hin + B * u; /* R (B, G) */
    const float *xs = x;
    if (v.Xd && in_drop) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t f = 0; f < F; f++) v.Xd[(b * T + t) * F + f] = x[(b * T + t) * F + f] * in_drop[b * F + f];
        xs = v.Xd;
    }
    gemm_ld(0, 0, B * T, G, F, xs, F, w->kernel, G, 0.0f, v.A, G);
    if (w->bias)
        for (int64_t r = 0; r < B * T; r++)
            for (int64_t j = 0; j < G; j++) v.A[r * G + j] += w->bias[j];
    memset(hcur, 0, sizeof(float) * (size_t)(2 * B * u));
    const int64_t ldA = T * G, ldE = T * u;
    const int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int64_t s = 0; s < T; s++) {
        const int64_t t = time_of(d, s);
        const float *hsrc = hcur;
        if (rec_drop) {
            for (int64_t k = 0; k < B * u; k++) hin[k] = hcur[k] * rec_drop[k];
            hsrc = hin;
        }
        float *At = v.A + t * G, *Et = v.E + t * u;
        if (d->cell == CT_RNN_GRU) {
            if (d->reset_after) {
                gemm_ld(0, 0, B, G, u, hsrc, u, w->rec, G, 0.0f, R, G);
                if (w->bias)
                    for (int64_t b = 0; b < B; b++)
                        for (int64_t j = 0; j < G; j++) R[b * G + j] += w->bias[G + j];
            } else {
                gemm_ld(0, 0, B, 2 * u, u, hsrc, u, w->rec, G, 0.0f, R, G);
            }
        } else {
            gemm_ld(0, 0, B, G, u, hsrc, u, w->rec, G, 1.0f, At, ldA);
        }
        for (int64_t b = 0; b < B; b++) {
            float *hb = v.H + (b * T + t) * u, *eb = Et + b * ldE;
            if (mask && mask[b * T + t] == 0) {
                memcpy(hb, hcur + b * u, sizeof(float) * (size_t)u);
                if (d->cell == CT_RNN_LSTM) memcpy(eb, ccur + b * u, sizeof(float) * (size_t)u);
                else memset(eb, 0, sizeof(float) * (size_t)u);
                if (v.TC) memset(v.TC + (b * T + t) * u, 0, sizeof(float) * (size_t)u);
                continue;
            }
            step_row(d, At + b * ldA, R + b * G, hcur + b * u, ccur + b * u, hb, ccur + b * u, eb,
                     v.TC ? v.TC + (b * T + t) * u : NULL);
            if (gru_rb)
                for (int64_t j = 0; j < u; j++) eb[j] = At[b * ldA + u + j] * hsrc[b * u + j];
        }
        if (gru_rb) {
            /* n = act(xh + (r h') U_h), then h = z h' + (1 - z) n */
            gemm_ld(0, 0, B, u, u, Et, ldE, w->rec + 2 * u, G, 1.0f, At + 2 * u, ldA);
            for (int64_t b = 0; b < B; b++) {
                if (mask && mask[b * T + t] == 0) continue;
                float *a = At + b * ldA, *hb = v.H + (b * T + t) * u;
                for (int64_t j = 0; j < u; j++) {
                    a[2 * u + j] = act_f(d->act, a[2 * u + j]);
                    hb[j] = a[j] * hcur[b * u + j] + (1 - a[j]) * a[2 * u + j];
                }
            }
        }
        for (int64_t b = 0; b < B; b++) memcpy(hcur + b * u, v.H + (b * T + t) * u, sizeof(float) * (size_t)u);
        if (seq)
            for (int64_t b = 0; b < B; b++) {
                float *o = seq + (b * T + s) * u;
                if (d->zero_output_for_mask && mask && mask[b * T + t] == 0) memset(o, 0, sizeof(float) * (size_t)u);
                else memcpy(o, hcur + b * u, sizeof(float) * (size_t)u);
            }
    }
    omp_set_num_threads(nt);
    if (h_last) memcpy(h_last, hcur, sizeof(float) * (size_t)(B * u));
    if (c_last && d->cell == CT_RNN_LSTM) memcpy(c_last, ccur, sizeof(float) * (size_t)(B * u));
}

/* Gate gradients of one unmasked row: dp (G) for the input side, dr (G)
 * for the recurrent side (GRU reset_after; else NULL), and the part of
 * dL/dh' that bypasses U into *dh_direct. dh, dc: gradients of the state
 * after the step (dc updated to dL/dc'). */
static inline void grad_row(const ct_rnn_desc *d, const float *a, const float *e, const float *tcs, const float *hp,
                            const float *cp, const float *dh, float *dc, float *dp, float *dr, float *dh_direct)
{
    const int64_t u = d->units;
    switch (d->cell) {
    case CT_RNN_SIMPLE:
        for (int64_t j = 0; j < u; j++) {
            dp[j] = dh[j] * act_d(d->act, a[j]);
            dh_direct[j] = 0;
        }
        break;
    case CT_RNN_LSTM:
        for (int64_t j = 0; j < u; j++) {
            float i = a[j], f = a[u + j], g = a[2 * u + j], o = a[3 * u + j];
            float tc = tcs[j];
            float dcc = dc[j] + dh[j] * o * act_d(d->act, tc);
            dp[j] = dcc * g * act_d(d->rec_act, i);
            dp[u + j] = dcc * cp[j] * act_d(d->rec_act, f);
            dp[2 * u + j] = dcc * i * act_d(d->act, g);
            dp[3 * u + j] = dh[j] * tc * act_d(d->rec_act, o);
            dc[j] = dcc * f;
            dh_direct[j] = 0;
        }
        break;
    case CT_RNN_GRU:
        for (int64_t j = 0; j < u; j++) {
            float z = a[j], r = a[u + j], n = a[2 * u + j];
            float dpn = dh[j] * (1 - z) * act_d(d->act, n);
            dp[j] = dh[j] * (hp[j] - n) * act_d(d->rec_act, z);
            dp[2 * u + j] = dpn;
            dh_direct[j] = dh[j] * z;
            if (d->reset_after) {
                dp[u + j] = dpn * e[j] * act_d(d->rec_act, r);
                dr[j] = dp[j], dr[u + j] = dp[u + j], dr[2 * u + j] = dpn * r;
            }
        }
        break;
    }
}

void ct_op_rnn_bwd(const ct_rnn_desc *d, const ct_rnn_weights *w, const float *x, const float *mask,
                   const float *in_drop, const float *rec_drop, const float *dseq, const float *dh_last,
                   const float *dc_last, const float *saved, float *scratch, float *dx, const ct_rnn_grads *g)
{
    rnn_view v = view_of(d, (float *)saved);
    const int64_t B = v.B, T = v.T, F = v.F, u = v.u, G = v.G;
    const int gru_ra = d->cell == CT_RNN_GRU && d->reset_after, gru_rb = d->cell == CT_RNN_GRU && !d->reset_after;
    float *dP = scratch, *dR = dP + B * T * G, *Hp = dR + B * T * G;
    float *dX = Hp + B * T * u; /* (B, T, F) with dropout */
    float *dh = dX + (d->dropout ? B * T * F : 0), *dc = dh + B * u, *tmp = dc + B * u;
    float *dhd = tmp + B * u, *zero = dhd + B * u;  /* zero: u floats */
    float *drh = zero + u;                          /* (B, u) reset_before */
    const int64_t ldA = T * G, ldE = T * u;
    memset(zero, 0, sizeof(float) * (size_t)u);
    if (dh_last) memcpy(dh, dh_last, sizeof(float) * (size_t)(B * u));
    else memset(dh, 0, sizeof(float) * (size_t)(B * u));
    if (dc_last && d->cell == CT_RNN_LSTM) memcpy(dc, dc_last, sizeof(float) * (size_t)(B * u));
    else memset(dc, 0, sizeof(float) * (size_t)(B * u));
    const int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int64_t s = T - 1; s >= 0; s--) {
        const int64_t t = time_of(d, s), tp = s > 0 ? time_of(d, s - 1) : -1;
        for (int64_t b = 0; b < B; b++) {
            const int masked = mask && mask[b * T + t] == 0;
            float *dhb = dh + b * u;
            if (dseq && !(masked && d->zero_output_for_mask)) {
                const float *o = dseq + (b * T + s) * u;
                for (int64_t j = 0; j < u; j++) dhb[j] += o[j];
            }
            const float *hp = tp >= 0 ? v.H + (b * T + tp) * u : zero;
            const float *cp = tp >= 0 && d->cell == CT_RNN_LSTM ? v.E + (b * T + tp) * u : zero;
            float *hin = Hp + (b * T + t) * u, *dpb = dP + (b * T + t) * G, *drb = dR + (b * T + t) * G;
            for (int64_t j = 0; j < u; j++) hin[j] = rec_drop ? hp[j] * rec_drop[b * u + j] : hp[j];
            if (masked) {
                memset(dpb, 0, sizeof(float) * (size_t)G);
                if (gru_ra) memset(drb, 0, sizeof(float) * (size_t)G);
                memcpy(dhd + b * u, dhb, sizeof(float) * (size_t)u); /* the state passes through; dc too */
                continue;
            }
            grad_row(d, v.A + (b * T + t) * G, v.E + (b * T + t) * u, v.TC ? v.TC + (b * T + t) * u : NULL, hp, cp,
                     dhb, dc + b * u, dpb,
                     gru_ra ? drb : NULL, dhd + b * u);
        }
        if (gru_rb) {
            /* d(r h') = dpn U_h^T; then dr and the direct part through r h' */
            gemm_ld(0, 1, B, u, u, dP + t * G + 2 * u, ldA, w->rec + 2 * u, G, 0.0f, drh, u);
            for (int64_t b = 0; b < B; b++) {
                if (mask && mask[b * T + t] == 0) continue;
                const float *a = v.A + (b * T + t) * G, *hin = Hp + (b * T + t) * u;
                float *dpb = dP + (b * T + t) * G, *dhb = dhd + b * u;
                for (int64_t j = 0; j < u; j++) {
                    float q = drh[b * u + j] * (rec_drop ? rec_drop[b * u + j] : 1.0f);
                    dpb[u + j] = drh[b * u + j] * hin[j] * act_d(d->rec_act, a[u + j]);
                    dhb[j] += q * a[u + j];
                }
            }
        }
        /* dL/dh' = direct part + (gates' gradient) U^T, through rec_drop */
        const float *dsrc = gru_ra ? dR + t * G : dP + t * G;
        gemm_ld(0, 1, B, u, gru_rb ? 2 * u : G, dsrc, ldA, w->rec, G, 0.0f, tmp, u);
        for (int64_t k = 0; k < B * u; k++) dh[k] = dhd[k] + (rec_drop ? tmp[k] * rec_drop[k] : tmp[k]);
    }
    omp_set_num_threads(nt);
    const float *xs = v.Xd && in_drop ? v.Xd : x;
    if (g->kernel) gemm_ld(1, 0, F, G, B * T, xs, F, dP, G, 1.0f, g->kernel, G);
    if (g->rec) {
        if (gru_ra) gemm_ld(1, 0, u, G, B * T, Hp, u, dR, G, 1.0f, g->rec, G);
        else if (gru_rb) {
            gemm_ld(1, 0, u, 2 * u, B * T, Hp, u, dP, G, 1.0f, g->rec, G);
            gemm_ld(1, 0, u, u, B * T, v.E, u, dP + 2 * u, G, 1.0f, g->rec + 2 * u, G);
        } else gemm_ld(1, 0, u, G, B * T, Hp, u, dP, G, 1.0f, g->rec, G);
    }
    if (g->bias) {
        /* column sums in row order (thread-independent) */
        for (int64_t r = 0; r < B * T; r++)
            for (int64_t j = 0; j < G; j++) g->bias[j] += dP[r * G + j];
        if (gru_ra)
            for (int64_t r = 0; r < B * T; r++)
                for (int64_t j = 0; j < G; j++) g->bias[G + j] += dR[r * G + j];
    }
    if (dx) {
        if (in_drop && d->dropout) {
            gemm_ld(0, 1, B * T, F, G, dP, G, w->kernel, G, 0.0f, dX, F);
            for (int64_t b = 0; b < B; b++)
                for (int64_t t = 0; t < T; t++)
                    for (int64_t f = 0; f < F; f++)
                        dx[(b * T + t) * F + f] += dX[(b * T + t) * F + f] * in_drop[b * F + f];
        } else {
            gemm_ld(0, 1, B * T, F, G, dP, G, w->kernel, G, 1.0f, dx, F);
        }
    }
    (void)ldE;
}
