/* Attention, layer normalization, embedding lookups and masked time
 * pooling: the non-recurrent kernels of the sequence layers.
 *
 * Attention runs one (b, h) pair per OpenMP iteration with single-threaded
 * sgemms on strided views of the (B, T, H, K) projections, so nothing is
 * transposed and the result does not depend on the thread count.
 * Reductions (layer-norm statistics, embedding gradients) accumulate in
 * double in a fixed order. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "seq_ops.h"

/* Keras adds (1 - mask) * -1e9 to masked scores before the softmax. */
#define MASK_NEG (-1e9f)

/* e^x for x <= 0 (softmax after the max is taken out), written so that a
 * loop of it vectorises without -ffast-math: x = k ln2 + r, |r| <= ln2/2,
 * e^r by a degree-6 polynomial (relative error < 2e-7), 2^k through the
 * exponent bits; rounding by the 1.5 * 2^23 trick. Below -87 it gives 0. */
static inline float exp_neg(float x)
{
    x = x < -87.0f ? -87.0f : x;
    const float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    const float r = (x - k * 0.693145752f) - k * 1.42860677e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } two = {.i = ((int32_t)k + 127) << 23};
    return p * two.f;
}

static void gemm_ld(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

int64_t ct_attn_saved(const ct_attn_desc *d) { return 2 * d->heads * d->tq * d->tv + d->heads * d->tq; }
int64_t ct_attn_scratch(const ct_attn_desc *d) { return d->heads * d->tq * d->tv; }

void ct_op_attention_fwd(const ct_attn_desc *d, const float *q, const float *k, const float *v,
                         const float *key_mask, const float *query_mask, const float *drop, float *o,
                         float *saved)
{
    const int64_t B = d->batch, H = d->heads, Tq = d->tq, Tv = d->tv, K = d->key_dim, V = d->value_dim;
    const int64_t P = Tq * Tv;
#pragma omp parallel for schedule(static)
    for (int64_t bh = 0; bh < B * H; bh++) {
        const int64_t b = bh / H, h = bh % H;
        float *p = saved + (b * 2 * H + h) * P, *pd = drop ? p + H * P : p; /* p, then p after dropout */
        float *dead = saved + B * 2 * H * P + bh * Tq;          /* 1: every key of the row is masked */
        const float *qb = q + (b * Tq * H + h) * K, *kb = k + (b * Tv * H + h) * K;
        gemm_ld(0, 1, Tq, Tv, K, d->scale, qb, H * K, kb, H * K, 0.0f, p, Tv);
        for (int64_t i = 0; i < Tq; i++) {
            float *row = p + i * Tv;
            const float qm = query_mask ? query_mask[b * Tq + i] : 1.0f;
            int live = 1;
            if (qm == 0 || key_mask || d->causal) {
                live = 0;
                for (int64_t j = 0; j < Tv; j++) {
                    float m = qm * (key_mask ? key_mask[b * Tv + j] : 1.0f) * (d->causal && j > i ? 0.0f : 1.0f);
                    /* Keras adds -1e9, which in float32 leaves nothing of the score (the spacing there is 64) */
                    if (m == 0) row[j] = MASK_NEG;
                    else live = 1;
                }
            }
            dead[i] = live ? 0.0f : 1.0f;
            float mx = row[0];
            for (int64_t j = 1; j < Tv; j++) mx = row[j] > mx ? row[j] : mx;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t j = 0; j < Tv; j++) {
                row[j] = exp_neg(row[j] - mx);
                s += row[j];
            }
            const float inv = 1.0f / s;
            for (int64_t j = 0; j < Tv; j++) row[j] *= inv;
            if (drop) {
                const float *dr = drop + (bh * Tq + i) * Tv;
                for (int64_t j = 0; j < Tv; j++) pd[i * Tv + j] = row[j] * dr[j];
            }
        }
        gemm_ld(0, 0, Tq, V, Tv, 1.0f, pd, Tv, v + (b * Tv * H + h) * V, H * V, 0.0f, o + (b * Tq * H + h) * V,
                H * V);
    }
}

void ct_op_attention_bwd(const ct_attn_desc *d, const float *q, const float *k, const float *v,
                         const float *drop, const float *dout, const float *saved, float *dq, float *dk,
                         float *dv, float *scratch)
{
    const int64_t B = d->batch, H = d->heads, Tq = d->tq, Tv = d->tv, K = d->key_dim, V = d->value_dim;
    const int64_t P = Tq * Tv;
    /* One thread per sample: dk and dv rows of a sample are shared by its heads' strided views only
     * through disjoint columns, but keeping a sample on one thread keeps the order fixed. */
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            const float *p = saved + (b * 2 * H + h) * P, *pd = drop ? p + H * P : p;
            float *ds = scratch + (b * H + h) * P;
            const float *dob = dout + (b * Tq * H + h) * V;
            /* dv += pd^T do;  d(pd) = do v^T */
            gemm_ld(1, 0, Tv, V, Tq, 1.0f, pd, Tv, dob, H * V, 1.0f, dv + (b * Tv * H + h) * V, H * V);
            gemm_ld(0, 1, Tq, Tv, V, 1.0f, dob, H * V, v + (b * Tv * H + h) * V, H * V, 0.0f, ds, Tv);
            const float *dead = saved + B * 2 * H * P + (b * H + h) * Tq;
            for (int64_t i = 0; i < Tq; i++) {
                float *dr = ds + i * Tv;
                if (dead[i]) { /* a constant row: no gradient reaches the scores */
                    memset(dr, 0, sizeof(float) * (size_t)Tv);
                    continue;
                }
                const float *pr = p + i * Tv, *mr = drop ? drop + ((b * H + h) * Tq + i) * Tv : NULL;
                double dot = 0;
                for (int64_t j = 0; j < Tv; j++) {
                    if (mr) dr[j] *= mr[j];
                    dot += (double)dr[j] * pr[j];
                }
                for (int64_t j = 0; j < Tv; j++) dr[j] = pr[j] * (dr[j] - (float)dot);
            }
            /* s = scale q k^T: dq += scale ds k, dk += scale ds^T q */
            gemm_ld(0, 0, Tq, K, Tv, d->scale, ds, Tv, k + (b * Tv * H + h) * K, H * K, 1.0f,
                    dq + (b * Tq * H + h) * K, H * K);
            gemm_ld(1, 0, Tv, K, Tq, d->scale, ds, Tv, q + (b * Tq * H + h) * K, H * K, 1.0f,
                    dk + (b * Tv * H + h) * K, H * K);
        }
    }
}

void ct_op_layer_norm_fwd(const float *x, const float *gamma, const float *beta, float eps, float *y,
                          float *stats, int64_t rows, int64_t c)
{
#pragma omp parallel for schedule(static) if (rows * c > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        double s = 0, q = 0;
        for (int64_t j = 0; j < c; j++) s += xr[j];
        const double mean = s / (double)c;
        for (int64_t j = 0; j < c; j++) q += (xr[j] - mean) * (xr[j] - mean);
        const float m = (float)mean, rs = (float)(1.0 / sqrt(q / (double)c + eps));
        stats[2 * r] = m, stats[2 * r + 1] = rs;
        float *yr = y + r * c;
        for (int64_t j = 0; j < c; j++) {
            float t = (xr[j] - m) * rs;
            yr[j] = (gamma ? t * gamma[j] : t) + (beta ? beta[j] : 0.0f);
        }
    }
}

void ct_op_layer_norm_bwd(const float *x, const float *gamma, const float *dy, const float *stats, float *dx,
                          float *dgamma, float *dbeta, int64_t rows, int64_t c)
{
    if (dx) {
#pragma omp parallel for schedule(static) if (rows * c > 32768)
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * c, *dyr = dy + r * c;
            const float m = stats[2 * r], rs = stats[2 * r + 1];
            double s1 = 0, s2 = 0;
            for (int64_t j = 0; j < c; j++) {
                double g = (double)dyr[j] * (gamma ? gamma[j] : 1.0f);
                s1 += g;
                s2 += g * (xr[j] - m) * rs;
            }
            const float a = (float)(s1 / (double)c), bq = (float)(s2 / (double)c);
            float *dxr = dx + r * c;
            for (int64_t j = 0; j < c; j++) {
                float g = dyr[j] * (gamma ? gamma[j] : 1.0f), xh = (xr[j] - m) * rs;
                dxr[j] += rs * (g - a - xh * bq);
            }
        }
    }
    if (dgamma || dbeta) {
        /* blocks of 64 columns, rows in order inside each (thread-independent), reading rows contiguously */
        const int64_t nblk = (c + 63) / 64;
#pragma omp parallel for schedule(static) if (rows * c > 32768)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t j0 = blk * 64, j1 = j0 + 64 < c ? j0 + 64 : c;
            double sg[64] = {0}, sb[64] = {0};
            for (int64_t r = 0; r < rows; r++) {
                const float *dyr = dy + r * c, *xr = x + r * c;
                const float m = stats[2 * r], rs = stats[2 * r + 1];
                for (int64_t j = j0; j < j1; j++) {
                    sg[j - j0] += (double)dyr[j] * ((xr[j] - m) * rs);
                    sb[j - j0] += dyr[j];
                }
            }
            for (int64_t j = j0; j < j1; j++) {
                if (dgamma) dgamma[j] += (float)sg[j - j0];
                if (dbeta) dbeta[j] += (float)sb[j - j0];
            }
        }
    }
}

int64_t ct_op_embedding_fwd(const float *ids, const float *table, float *y, int64_t n, int64_t vocab,
                            int64_t dim)
{
    int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (n * dim > 32768)
    for (int64_t i = 0; i < n; i++) {
        float f = ids[i];
        if (!(f >= 0 && f < (float)vocab)) {
            memset(y + i * dim, 0, sizeof(float) * (size_t)dim);
            bad++;
            continue;
        }
        memcpy(y + i * dim, table + (int64_t)f * dim, sizeof(float) * (size_t)dim);
    }
    return bad;
}

void ct_op_embedding_bwd(const float *ids, const float *dy, float *dtable, int64_t n, int64_t vocab,
                         int64_t dim)
{
    /* Rows are added in id order within one pass (serial: rows of the same
     * id must not race, and the order stays fixed). */
    for (int64_t i = 0; i < n; i++) {
        float f = ids[i];
        if (!(f >= 0 && f < (float)vocab)) continue;
        float *t = dtable + (int64_t)f * dim;
        const float *g = dy + i * dim;
        for (int64_t j = 0; j < dim; j++) t[j] += g[j];
    }
}

void ct_op_masked_mean_fwd(const float *x, const float *mask, float *y, int64_t b, int64_t t, int64_t c)
{
#pragma omp parallel for schedule(static) if (b * t * c > 32768)
    for (int64_t i = 0; i < b; i++) {
        double cnt = 0;
        for (int64_t s = 0; s < t; s++) cnt += mask ? mask[i * t + s] : 1.0f;
        float *yr = y + i * c;
        for (int64_t j = 0; j < c; j++) {
            double acc = 0;
            for (int64_t s = 0; s < t; s++) acc += (double)x[(i * t + s) * c + j] * (mask ? mask[i * t + s] : 1.0f);
            yr[j] = cnt > 0 ? (float)(acc / cnt) : 0.0f;
        }
    }
}

void ct_op_masked_mean_bwd(const float *mask, const float *dy, float *dx, int64_t b, int64_t t, int64_t c)
{
#pragma omp parallel for schedule(static) if (b * t * c > 32768)
    for (int64_t i = 0; i < b; i++) {
        double cnt = 0;
        for (int64_t s = 0; s < t; s++) cnt += mask ? mask[i * t + s] : 1.0f;
        if (cnt <= 0) continue;
        for (int64_t s = 0; s < t; s++) {
            float w = (float)((mask ? mask[i * t + s] : 1.0f) / cnt);
            for (int64_t j = 0; j < c; j++) dx[(i * t + s) * c + j] += dy[i * c + j] * w;
        }
    }
}
