/* Boosted trees: binning, gradients, histogram growth, prediction (see
 * trees.h for the rules followed and why the sums are integers).
 *
 * Data parallelism: every rank holds the whole training part in memory
 * (it is read once, like sklearn's X) but bins, and builds histograms on,
 * only its shard: rows [n * rank / size, n * (rank + 1) / size). A node's
 * histogram is the int64 allreduce of the shards' histograms; the smaller
 * child of a split is built and its sibling is the parent minus it. Every
 * quantity a decision depends on (split gains, leaf values, the losses
 * early stopping compares) is computed from exact integer sums or from
 * data every rank holds whole, in a fixed order. */
#include "trees.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "rng.h"

#define MIN_HESSIAN 1e-3       /* sklearn's min_hessian_to_split */
#define MIN_CAT_SUPPORT 10     /* sklearn: categories seen fewer times are not sorted into the split */
#define MAX_CAT_THRESHOLD 32   /* sklearn: at most this many categories are scanned from each end */
#define ALMOST_INF 1e300       /* sklearn clips thresholds here */
#define LEAF_EPS 1e-15

/* --- losses ----------------------------------------------------------------- */

static double sigmoid(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

/* Per-row loss (sklearn's: log loss, half squared error) of raw scores r (k). */
static double row_loss(const ct_trees *m, const double *r, float y)
{
    switch (m->loss) {
    case CT_TREES_SQUARED_ERROR: return 0.5 * ((double)y - r[0]) * ((double)y - r[0]);
    case CT_TREES_BINARY: return (r[0] > 0 ? r[0] + log1p(exp(-r[0])) : log1p(exp(r[0]))) - (double)y * r[0];
    case CT_TREES_MULTICLASS: {
        double mx = r[0], s = 0;
        for (int c = 1; c < m->k; c++) mx = r[c] > mx ? r[c] : mx;
        for (int c = 0; c < m->k; c++) s += exp(r[c] - mx);
        return mx + log(s) - r[(int)y];
    }
    }
    return 0;
}

/* g, h (k each) of one row, and its loss as row_loss gives it (one pass,
 * sharing the exponentials). */
static double row_grad(const ct_trees *m, const double *r, float y, double w, double *g, double *h)
{
    if (m->loss == CT_TREES_SQUARED_ERROR) {
        g[0] = w * (r[0] - (double)y);
        h[0] = w;
        return 0.5 * ((double)y - r[0]) * ((double)y - r[0]);
    }
    if (m->loss == CT_TREES_BINARY) {
        double e = exp(-fabs(r[0])), p = r[0] >= 0 ? 1 / (1 + e) : e / (1 + e);
        g[0] = w * (p - (double)y);
        h[0] = w * p * (1 - p);
        return log1p(e) + (r[0] > 0 ? r[0] : 0) - (double)y * r[0];
    }
    double mx = r[0], s = 0, ex[256];
    for (int c = 1; c < m->k; c++) mx = r[c] > mx ? r[c] : mx;
    for (int c = 0; c < m->k; c++) s += ex[c] = exp(r[c] - mx);
    for (int c = 0; c < m->k; c++) {
        double p = ex[c] / s;
        g[c] = w * (p - (c == (int)y ? 1.0 : 0.0));
        h[c] = w * p * (1 - p);
    }
    return mx + log(s) - r[(int)y];
}

static double row_weight(const double *cw, float y) { return cw ? cw[(int)y] : 1.0; }

/* sklearn's fit_intercept_only: the weighted mean, its logit, or the
 * centred log-probabilities (eps-clipped). */
static void compute_baseline(ct_trees *m, const ct_dataset *d, const double *cw)
{
    double sw = 0, swy = 0, pk[256] = {0};
    for (int64_t i = 0; i < d->n; i++) {
        double w = row_weight(cw, d->y[i]);
        sw += w;
        swy += w * d->y[i];
        if (m->loss == CT_TREES_MULTICLASS) pk[(int)d->y[i]] += w;
    }
    if (m->loss == CT_TREES_SQUARED_ERROR) {
        m->baseline[0] = sw > 0 ? swy / sw : 0;
    } else if (m->loss == CT_TREES_BINARY) {
        double p = sw > 0 ? swy / sw : 0.5;
        p = p < DBL_EPSILON ? DBL_EPSILON : p > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : p;
        m->baseline[0] = log(p / (1 - p));
    } else {
        double mean = 0;
        for (int c = 0; c < m->k; c++) {
            double p = sw > 0 ? pk[c] / sw : 1.0 / m->k;
            p = p < DBL_EPSILON ? DBL_EPSILON : p > 1 - DBL_EPSILON ? 1 - DBL_EPSILON : p;
            m->baseline[c] = log(p);
            mean += m->baseline[c];
        }
        for (int c = 0; c < m->k; c++) m->baseline[c] -= mean / m->k;
    }
}

/* --- binning ---------------------------------------------------------------- */

/* Sorts n floats (no NaN) ascending: LSD radix sort on order-preserving
 * keys, two passes of 16 bits (tmp: n entries, cnt: 65537). */
static void sort_floats(uint32_t *key, uint32_t *tmp, int64_t *cnt, int64_t n)
{
    for (int64_t i = 0; i < n; i++) key[i] = key[i] >> 31 ? ~key[i] : key[i] | 0x80000000u;
    for (int pass = 0; pass < 2; pass++) {
        int sh = 16 * pass;
        memset(cnt, 0, sizeof *cnt * 65537);
        for (int64_t i = 0; i < n; i++) cnt[((key[i] >> sh) & 0xffff) + 1]++;
        for (int k = 0; k < 65536; k++) cnt[k + 1] += cnt[k];
        for (int64_t i = 0; i < n; i++) tmp[cnt[(key[i] >> sh) & 0xffff]++] = key[i];
        memcpy(key, tmp, sizeof *key * (size_t)n);
    }
    for (int64_t i = 0; i < n; i++) key[i] = key[i] >> 31 ? key[i] & 0x7fffffffu : ~key[i];
}

/* sklearn's _find_binning_thresholds on the non-missing values v (n,
 * sorted): midpoints of distinct values when there are at most max_bins,
 * else the (max_bins - 1) inner percentiles, numpy's 'midpoint' method. */
static int thresholds_of(const double *v, int64_t n, int max_bins, double *out)
{
    int64_t distinct = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || v[i] != v[i - 1]) distinct++;
    int ne = 0;
    if (distinct <= max_bins) {
        double prev = 0;
        for (int64_t i = 0, seen = 0; i < n; i++) {
            if (i && v[i] == v[i - 1]) continue;
            if (seen++) out[ne++] = prev + (v[i] - prev) * 0.5;
            prev = v[i];
        }
    } else {
        for (int b = 1; b < max_bins; b++) {
            double q = (double)b / max_bins, vi = (double)(n - 1) * q;
            int64_t lo = (int64_t)floor(vi), hi = (int64_t)ceil(vi);
            out[ne++] = lo == hi ? v[lo] : v[lo] + 0.5 * (v[hi] - v[lo]);
        }
    }
    for (int i = 0; i < ne; i++)
        if (out[i] > ALMOST_INF) out[i] = ALMOST_INF;
    return ne;
}

/* Edges of every numeric feature from a seeded subsample of the rows of
 * x (n, F) (all rows when n <= subsample). */
static ct_status compute_edges(ct_trees *m, const float *x, int64_t n, int max_bins, int64_t subsample, uint64_t seed)
{
    int F = m->n_features;
    int64_t ns = n < subsample ? n : subsample;
    int64_t *rows = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    double *v = malloc(sizeof(double) * (size_t)(ns > 0 ? ns : 1));
    uint32_t *key = malloc(sizeof(uint32_t) * (size_t)(ns > 0 ? ns : 1)), *tmp = malloc(sizeof(uint32_t) * (size_t)(ns > 0 ? ns : 1));
    int64_t *cnt = malloc(sizeof(int64_t) * 65537);
    if (!rows || !v || !key || !tmp || !cnt) {
        free(rows), free(v), free(key), free(tmp), free(cnt);
        return CT_FAIL(CT_ERR_NOMEM, "boosted trees: bin edges of %lld rows", (long long)n);
    }
    if (ns < n) {
        ct_rng r = ct_rng_make(seed, CT_RNG_SPLIT, 2);
        ct_rng_permutation(&r, rows, n);
    } else {
        for (int64_t i = 0; i < n; i++) rows[i] = i;
    }
    ct_status s = CT_OK;
    for (int f = 0; f < F && s == CT_OK; f++) {
        ct_trees_feature *ft = &m->features[f];
        if (ft->categorical) continue;
        int64_t k = 0;
        for (int64_t i = 0; i < ns; i++) {
            float val = x[rows[i] * F + f];
            if (!isnan(val)) memcpy(&key[k++], &val, sizeof val);
        }
        sort_floats(key, tmp, cnt, k);
        for (int64_t i = 0; i < k; i++) {
            float val;
            memcpy(&val, &key[i], sizeof val);
            v[i] = val == 0 ? 0.0 : val; /* -0 and +0 are one value, as numpy's unique has them */
        }
        free(ft->edges);
        ft->edges = malloc(sizeof(double) * (size_t)max_bins);
        if (!ft->edges) s = CT_FAIL(CT_ERR_NOMEM, "boosted trees: bin edges");
        else ft->n_edges = thresholds_of(v, k, max_bins, ft->edges);
    }
    free(rows);
    free(v);
    free(key);
    free(tmp);
    free(cnt);
    return s;
}

/* Rank 0's edges to every rank: counts, then the edges, in one buffer. */
static ct_status share_edges(ct_trees *m, ct_comm *comm)
{
    if (comm->size == 1) return CT_OK;
    int F = m->n_features;
    double *buf = calloc((size_t)F * 256, sizeof *buf);
    if (!buf) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: bin edges");
    if (comm->rank == 0)
        for (int f = 0; f < F; f++) {
            buf[f * 256] = m->features[f].n_edges;
            if (m->features[f].n_edges) memcpy(buf + f * 256 + 1, m->features[f].edges, sizeof(double) * (size_t)m->features[f].n_edges);
        }
    ct_status s = ct_comm_bcast(comm, buf, (int64_t)sizeof(double) * F * 256, 0);
    for (int f = 0; s == CT_OK && f < F; f++) {
        ct_trees_feature *ft = &m->features[f];
        if (ft->categorical) continue;
        ft->n_edges = (int)buf[f * 256];
        if (!ft->edges && !(ft->edges = malloc(sizeof(double) * 255))) s = CT_FAIL(CT_ERR_NOMEM, "bin edges");
        else memcpy(ft->edges, buf + f * 256 + 1, sizeof(double) * (size_t)ft->n_edges);
    }
    free(buf);
    return s;
}

/* The bin of value v of feature ft: the number of edges below v
 * (sklearn: x <= edges[b] is bin b), the category code, or the missing
 * bin. pad: the edges followed by +inf up to 255 entries, searched
 * without branches. */
static uint8_t bin_of(const ct_trees_feature *ft, const double *pad, float v)
{
    if (isnan(v)) return CT_MISSING_BIN;
    if (ft->categorical) return (uint8_t)(int)v;
    double x = v;
    int b = 0;
    for (int step = 128; step; step >>= 1) b += step & -(int)(x > pad[b + step - 1]);
    return (uint8_t)b;
}

/* Loops over rows fork threads only above this many (a fork on a busy
 * machine costs more than small loops). */
#define PAR_ROWS 16384

/* out (n, F) and, when not NULL, cout (F, n): the bins of x (n, F). */
static ct_status bin_rows(const ct_trees *m, const float *x, int64_t n, uint8_t *out, uint8_t *cout)
{
    int F = m->n_features;
    double *pad = malloc(sizeof(double) * 256 * (size_t)F);
    if (!pad) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: binning");
    for (int f = 0; f < F; f++) {
        const ct_trees_feature *fe = &m->features[f];
        for (int b = 0; b < 256; b++) pad[f * 256 + b] = b < fe->n_edges && !fe->categorical ? fe->edges[b] : INFINITY;
    }
#pragma omp parallel for schedule(static) if (n > PAR_ROWS)
    for (int64_t i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            uint8_t b = bin_of(&m->features[f], pad + f * 256, x[i * F + f]);
            out[i * F + f] = b;
            if (cout) cout[(int64_t)f * n + i] = b;
        }
    free(pad);
    return CT_OK;
}

/* Bins of non-missing values of a feature: numeric n_edges + 1, categorical its levels. */
static int bins_of(const ct_trees_feature *ft) { return ft->categorical ? ft->n_levels : ft->n_edges + 1; }

/* --- prediction ------------------------------------------------------------- */

static int goes_left_raw(const ct_tree_node *nd, const ct_trees_feature *ft, float v)
{
    if (isnan(v)) return nd->missing_left;
    if (nd->categorical) {
        int c = (int)v;
        if (c < 0 || c >= ft->n_levels) return nd->missing_left;
        return (nd->cats[c >> 5] >> (c & 31)) & 1;
    }
    return (double)v <= nd->threshold;
}

static double tree_value_raw(const ct_tree *t, const ct_trees *m, const float *x)
{
    const ct_tree_node *nd = t->nodes;
    while (nd->left >= 0) nd = &t->nodes[goes_left_raw(nd, &m->features[nd->feature], x[nd->feature]) ? nd->left : nd->right];
    return nd->value;
}

static int goes_left_bin(const ct_tree_node *nd, uint8_t b)
{
    if (b == CT_MISSING_BIN) return nd->missing_left;
    if (nd->categorical) return (nd->cats[b >> 5] >> (b & 31)) & 1;
    return b <= nd->bin;
}

static double tree_value_bins(const ct_tree *t, const uint8_t *b)
{
    const ct_tree_node *nd = t->nodes;
    while (nd->left >= 0) nd = &t->nodes[goes_left_bin(nd, b[nd->feature]) ? nd->left : nd->right];
    return nd->value;
}

void ct_trees_predict_raw(const ct_trees *m, const float *x, int64_t n, double *raw)
{
    int k = m->k, F = m->n_features;
#pragma omp parallel for schedule(static) if (n > PAR_ROWS)
    for (int64_t i = 0; i < n; i++) {
        double *r = raw + i * k;
        for (int c = 0; c < k; c++) r[c] = m->baseline[c];
        for (int it = 0; it < m->n_iter; it++)
            for (int c = 0; c < k; c++) r[c] += tree_value_raw(&m->trees[it * k + c], m, x + i * F);
    }
}

static void raw_to_output(const ct_trees *m, const double *r, float *out)
{
    if (m->loss == CT_TREES_SQUARED_ERROR) {
        out[0] = (float)r[0];
    } else if (m->loss == CT_TREES_BINARY) {
        out[0] = (float)sigmoid(r[0]);
    } else {
        double mx = r[0], s = 0;
        for (int c = 1; c < m->k; c++) mx = r[c] > mx ? r[c] : mx;
        for (int c = 0; c < m->k; c++) s += exp(r[c] - mx);
        for (int c = 0; c < m->k; c++) out[c] = (float)(exp(r[c] - mx) / s);
    }
}

void ct_trees_predict(const ct_trees *m, const float *x, int64_t n, float *out)
{
    double *raw = malloc(sizeof(double) * (size_t)(n * m->k + 1));
    if (!raw) {
        for (int64_t i = 0; i < n * m->k; i++) out[i] = NAN;
        return;
    }
    ct_trees_predict_raw(m, x, n, raw);
    for (int64_t i = 0; i < n; i++) raw_to_output(m, raw + i * m->k, out + i * m->k);
    free(raw);
}

/* The class of raw scores r: sklearn's argmax (the first of equal ones; binary: raw > 0). */
static int predicted_class(const ct_trees *m, const double *r)
{
    if (m->loss == CT_TREES_BINARY) return r[0] > 0;
    int best = 0;
    for (int c = 1; c < m->k; c++)
        if (r[c] > r[best]) best = c;
    return best;
}

ct_status ct_trees_evaluate(const ct_trees *m, const ct_dataset *d, ct_trees_scores *out)
{
    memset(out, 0, sizeof *out);
    if (d->x_size != m->n_features)
        return CT_FAIL(CT_ERR_SHAPE, "boosted trees: samples have %lld features, the model expects %d",
                       (long long)d->x_size, m->n_features);
    double *raw = malloc(sizeof(double) * (size_t)(d->n * m->k + 1));
    if (!raw) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: scores of %lld samples", (long long)d->n);
    ct_trees_predict_raw(m, d->x, d->n, raw);
    double loss = 0, correct = 0, se = 0, ae = 0;
    for (int64_t i = 0; i < d->n; i++) {
        const double *r = raw + i * m->k;
        loss += row_loss(m, r, d->y[i]);
        if (m->loss == CT_TREES_SQUARED_ERROR) {
            se += (r[0] - d->y[i]) * (r[0] - d->y[i]);
            ae += fabs(r[0] - d->y[i]);
        } else {
            correct += predicted_class(m, r) == (int)d->y[i];
        }
    }
    double n = d->n ? (double)d->n : 1;
    out->loss = loss / n;
    out->accuracy = correct / n;
    out->mse = se / n;
    out->mae = ae / n;
    free(raw);
    return CT_OK;
}

/* --- the fitter ------------------------------------------------------------- */

typedef struct split_info {
    double gain;             /* <= 0: no split */
    int feature, bin, missing_left, categorical;
    uint32_t cats[8];
    int64_t n_left, n_right; /* global counts */
} split_info;

typedef struct grow_node {
    int id;                  /* in the tree */
    int depth;
    int64_t start, n_local;  /* this rank's rows: rows[start, start + n_local) */
    int64_t *hist;           /* global histogram, or NULL */
    int64_t gq, hq, count;   /* global totals (quantised) */
    split_info split;
    int open;                /* a candidate for splitting */
} grow_node;

typedef struct fitter {
    ct_trees *m;
    const ct_trees_params *p;
    ct_comm *comm;
    int F, k, W;             /* features, trees per iteration, histogram lanes */
    int64_t n, n_global;     /* this rank's rows, all ranks' */
    const float *y;          /* this rank's labels (n) */
    uint8_t *bins;           /* (n, F) */
    uint8_t *cbins;          /* (F, n): the same, by feature, for partitioning */
    double *raw;             /* (n, k) */
    double *g, *h;           /* (n, k) */
    double *loss;            /* (n): per-row training losses */
    int64_t *gh;             /* (n, W): the tree's quantised values (packed gradient and count, hessian) */
    int32_t *rows, *tmp;     /* (n) */
    int cbits;               /* low bits of gc holding the count */
    double g_unit, h_unit;   /* value of one quantum */
    int64_t hist_len;        /* F * 256 * W */
    int64_t **pool;          /* free histograms */
    int n_pool, cap_pool;
    grow_node *nodes;
    int n_nodes, cap_nodes;
    /* validation (every rank holds all of it) */
    const ct_dataset *val;
    uint8_t *vbins;
    double *vraw;
    double total_w;          /* sum of training weights (exact: class counts times weights) */
} fitter;

static int64_t *hist_get(fitter *ft)
{
    if (ft->n_pool) {
        int64_t *h = ft->pool[--ft->n_pool];
        memset(h, 0, sizeof(int64_t) * (size_t)ft->hist_len);
        return h;
    }
    return calloc((size_t)ft->hist_len, sizeof(int64_t));
}

static void hist_put(fitter *ft, int64_t *h)
{
    if (!h) return;
    if (ft->n_pool == ft->cap_pool) {
        int cap = ft->cap_pool ? 2 * ft->cap_pool : 16;
        int64_t **p = realloc(ft->pool, sizeof *p * (size_t)cap);
        if (!p) {
            free(h);
            return;
        }
        ft->pool = p;
        ft->cap_pool = cap;
    }
    ft->pool[ft->n_pool++] = h;
}

/* Decoding a lane-0 sum: the count in the low cbits, the gradient above. */
static int64_t count_of(const fitter *ft, int64_t gc) { return gc & (((int64_t)1 << ft->cbits) - 1); }
static int64_t gq_of(const fitter *ft, int64_t gc) { return (gc - count_of(ft, gc)) / ((int64_t)1 << ft->cbits); }

/* G, H, N of lanes (gc, hq) summed over some bins. */
typedef struct sums {
    int64_t gc, hq;
} sums;

static double sum_g(const fitter *ft, sums s) { return (double)gq_of(ft, s.gc) * ft->g_unit; }
static double sum_h(const fitter *ft, sums s)
{
    return ft->W == 2 ? (double)s.hq * ft->h_unit : (double)count_of(ft, s.gc) * ft->h_unit;
}
static int64_t sum_n(const fitter *ft, sums s) { return count_of(ft, s.gc); }

static sums bin_sums(const fitter *ft, const int64_t *hist, int f, int b)
{
    const int64_t *e = hist + ((int64_t)f * CT_HIST_BINS + b) * ft->W;
    return (sums){e[0], ft->W == 2 ? e[1] : 0};
}

static sums add(sums a, sums b) { return (sums){a.gc + b.gc, a.hq + b.hq}; }
static sums subtract(sums a, sums b) { return (sums){a.gc - b.gc, a.hq - b.hq}; }

/* sklearn's loss of a node from its value: sum_g * (-sum_g / (sum_h + l2)). */
static double node_loss(double g, double h, double l2) { return g * (-g / (h + l2 + LEAF_EPS)); }

typedef struct split_ctx {
    const fitter *ft;
    double parent_loss;
    sums total;
} split_ctx;

/* Gain of left sums l (right = total - l), or -1 when a child is too small. */
static double split_gain(const split_ctx *c, sums l)
{
    const fitter *ft = c->ft;
    sums r = subtract(c->total, l);
    int64_t nl = sum_n(ft, l), nr = sum_n(ft, r);
    int msl = ft->p->min_samples_leaf;
    if (nl < msl || nr < msl) return -1;
    double hl = sum_h(ft, l), hr = sum_h(ft, r);
    if (hl < MIN_HESSIAN || hr < MIN_HESSIAN) return -1;
    double l2 = ft->p->l2;
    return c->parent_loss - node_loss(sum_g(ft, l), hl, l2) - node_loss(sum_g(ft, r), hr, l2);
}

static void consider(split_info *best, double gain, int f, int bin, int missing_left, sums l, const split_ctx *c)
{
    if (gain <= best->gain || gain <= 0) return;
    best->gain = gain;
    best->feature = f;
    best->bin = bin;
    best->missing_left = missing_left;
    best->categorical = 0;
    best->n_left = sum_n(c->ft, l);
    best->n_right = sum_n(c->ft, subtract(c->total, l));
}

/* Numeric feature f: left-to-right with missing values right (up to the
 * last bin when there are missing values: "non-missing left, missing
 * right"), then right-to-left with them left. */
static void split_numeric(const split_ctx *c, const int64_t *hist, int f, split_info *best)
{
    const fitter *ft = c->ft;
    const ct_trees_feature *fe = &ft->m->features[f];
    int nb = bins_of(fe), miss = fe->has_missing;
    sums l = {0, 0};
    for (int b = 0; b < nb - 1 + miss; b++) {
        l = add(l, bin_sums(ft, hist, f, b));
        consider(best, split_gain(c, l), f, b, 0, l, c);
    }
    if (!miss) return;
    sums right = {0, 0};
    for (int b = nb - 1; b >= 1; b--) {
        right = add(right, bin_sums(ft, hist, f, b));
        sums left = subtract(c->total, right);
        consider(best, split_gain(c, left), f, b - 1, 1, left, c);
    }
}

typedef struct cat_info {
    int bin;
    double value;
} cat_info;

static int cmp_cat(const void *a, const void *b)
{
    const cat_info *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->bin - y->bin;
}

/* Categorical feature f (sklearn's _find_best_bin_to_split_category):
 * categories with enough support (and the missing bin, when the feature
 * has missing values) sorted by g / (h + 10); the best prefix from each
 * end, at most 32 and half of them, goes left. */
static void split_categorical(const split_ctx *c, const int64_t *hist, int f, split_info *best)
{
    const fitter *ft = c->ft;
    const ct_trees_feature *fe = &ft->m->features[f];
    cat_info ci[CT_HIST_BINS];
    int nu = 0;
    for (int b = 0; b < CT_HIST_BINS; b++) {
        if (b >= fe->n_levels && !(b == CT_MISSING_BIN && fe->has_missing)) continue;
        sums s = bin_sums(ft, hist, f, b);
        if (sum_n(ft, s) < MIN_CAT_SUPPORT) continue;
        ci[nu++] = (cat_info){b, sum_g(ft, s) / (sum_h(ft, s) + MIN_CAT_SUPPORT)};
    }
    if (nu <= 1) return;
    qsort(ci, (size_t)nu, sizeof *ci, cmp_cat);
    int max_cat = (nu + 1) / 2 < MAX_CAT_THRESHOLD ? (nu + 1) / 2 : MAX_CAT_THRESHOLD;
    double best_gain = best->gain;
    int best_i = -1, best_dir = 0;
    for (int dir = 1; dir >= -1; dir -= 2) {
        sums l = {0, 0};
        for (int i = 0; i < max_cat; i++) {
            int idx = dir == 1 ? i : nu - 1 - i;
            l = add(l, bin_sums(ft, hist, f, ci[idx].bin));
            double gain = split_gain(c, l);
            if (gain > best_gain && gain > 0) {
                best_gain = gain;
                best_i = i;
                best_dir = dir;
            }
        }
    }
    if (best_i < 0) return;
    memset(best->cats, 0, sizeof best->cats);
    sums l = {0, 0};
    int missing_left = 0;
    for (int i = 0; i <= best_i; i++) {
        int b = ci[best_dir == 1 ? i : nu - 1 - i].bin;
        l = add(l, bin_sums(ft, hist, f, b));
        if (b == CT_MISSING_BIN) missing_left = 1;
        else best->cats[b >> 5] |= 1u << (b & 31);
    }
    best->gain = best_gain;
    best->feature = f;
    best->bin = 0;
    best->categorical = 1;
    best->missing_left = missing_left;
    best->n_left = sum_n(ft, l);
    best->n_right = sum_n(ft, subtract(c->total, l));
}

/* Best split of node nd (from its global histogram); gain <= 0: none. */
static void find_split(const fitter *ft, grow_node *nd)
{
    split_info best = {.gain = -1, .feature = -1};
    split_ctx c = {ft, 0, {0, 0}};
    c.total = (sums){0, 0};
    for (int b = 0; b < CT_HIST_BINS; b++) c.total = add(c.total, bin_sums(ft, nd->hist, 0, b));
    c.parent_loss = node_loss(sum_g(ft, c.total), sum_h(ft, c.total), ft->p->l2);
    for (int f = 0; f < ft->F; f++) {
        if (ft->m->features[f].categorical) split_categorical(&c, nd->hist, f, &best);
        else split_numeric(&c, nd->hist, f, &best);
    }
    /* sklearn: without missing values in training, they go to the child with more samples */
    if (best.feature >= 0 && !ft->m->features[best.feature].has_missing) best.missing_left = best.n_left > best.n_right;
    nd->split = best;
}

/* This rank's histogram of rows[start, start + n) summed over ranks. */
static ct_status build_hist(fitter *ft, int64_t start, int64_t n, int64_t **out)
{
    int64_t *h = hist_get(ft);
    if (!h) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: histogram of %d features", ft->F);
    ct_op_hist_build(ft->bins, ft->F, ft->F, start == 0 && n == ft->n ? NULL : ft->rows + start, n, ft->gh, ft->W, h);
    ct_status s = ct_comm_allreduce_i64(ft->comm, h, (int)ft->hist_len);
    if (s != CT_OK) {
        free(h);
        return s;
    }
    *out = h;
    return CT_OK;
}

static ct_status add_node(fitter *ft, ct_tree *t, int depth, int64_t start, int64_t n_local, grow_node **out)
{
    if (ft->n_nodes == ft->cap_nodes) {
        int cap = ft->cap_nodes ? 2 * ft->cap_nodes : 64;
        grow_node *g = realloc(ft->nodes, sizeof *g * (size_t)cap);
        if (!g) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: nodes");
        ft->nodes = g;
        ft->cap_nodes = cap;
    }
    if (t->n_nodes == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        ct_tree_node *nn = realloc(t->nodes, sizeof *nn * (size_t)cap);
        if (!nn) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: nodes");
        t->nodes = nn;
        t->cap = cap;
    }
    grow_node *g = &ft->nodes[ft->n_nodes++];
    memset(g, 0, sizeof *g);
    g->id = t->n_nodes++;
    g->depth = depth;
    g->start = start;
    g->n_local = n_local;
    ct_tree_node *tn = &t->nodes[g->id];
    memset(tn, 0, sizeof *tn);
    tn->left = tn->right = -1;
    tn->feature = -1;
    tn->depth = depth;
    *out = g;
    return CT_OK;
}

static void set_totals(const fitter *ft, grow_node *g, sums t)
{
    g->gq = gq_of(ft, t.gc);
    g->hq = t.hq;
    g->count = count_of(ft, t.gc);
}

/* A node that may be split: not at max_depth, at least 2 * min_samples_leaf samples. */
static int may_split(const fitter *ft, const grow_node *g)
{
    return !(ft->p->max_depth > 0 && g->depth >= ft->p->max_depth) && g->count >= 2 * (int64_t)ft->p->min_samples_leaf;
}

/* Totals of a node with a histogram, and its best split when it may be split. */
static void prepare_node(fitter *ft, grow_node *g)
{
    sums t = {0, 0};
    for (int b = 0; b < CT_HIST_BINS; b++) t = add(t, bin_sums(ft, g->hist, 0, b));
    set_totals(ft, g, t);
    g->open = 0;
    g->split.gain = -1;
    if (may_split(ft, g)) {
        find_split(ft, g);
        g->open = g->split.gain > 0;
    }
}

/* sklearn: -learning_rate * G / (H + l2) */
static double node_value(const fitter *ft, const grow_node *g)
{
    double G = (double)g->gq * ft->g_unit, H = (double)(ft->W == 2 ? g->hq : g->count) * ft->h_unit;
    return -ft->p->learning_rate * G / (H + ft->p->l2 + LEAF_EPS);
}

/* Split node index gi: partition its rows, the children's histograms (the
 * smaller built, the other by subtraction), their best splits. `last`:
 * no split follows (max_leaf_nodes reached), so the children are leaves
 * and their totals come from the parent's histogram of the split feature;
 * so they do when neither child may be split. */
static ct_status split_node(fitter *ft, ct_tree *t, int gi, int last)
{
    grow_node *g = &ft->nodes[gi];
    split_info sp = g->split;
    uint8_t left[CT_HIST_BINS];
    for (int b = 0; b < CT_HIST_BINS; b++) {
        if (b == CT_MISSING_BIN) left[b] = (uint8_t)sp.missing_left;
        else if (sp.categorical) left[b] = (uint8_t)((sp.cats[b >> 5] >> (b & 31)) & 1);
        else left[b] = b <= sp.bin;
    }
    int64_t start = g->start, n = g->n_local;
    int64_t nl = ct_op_hist_partition(ft->cbins + (int64_t)sp.feature * ft->n, 1, 0, left, ft->rows + start, n, ft->tmp);
    int depth = g->depth + 1, id = g->id;
    int64_t *parent = g->hist;
    g->hist = NULL;
    g->open = 0;
    grow_node *L, *R;
    CT_TRY(add_node(ft, t, depth, start, nl, &L));
    int li = (int)(L - ft->nodes);
    CT_TRY(add_node(ft, t, depth, start + nl, n - nl, &R));
    int ri = (int)(R - ft->nodes);
    L = &ft->nodes[li];
    ct_tree_node *tn = &t->nodes[id];
    tn->left = L->id;
    tn->right = R->id;
    tn->feature = sp.feature;
    tn->missing_left = (uint8_t)sp.missing_left;
    tn->categorical = (uint8_t)sp.categorical;
    tn->bin = (uint16_t)sp.bin;
    memcpy(tn->cats, sp.cats, sizeof tn->cats);
    const ct_trees_feature *fe = &ft->m->features[sp.feature];
    tn->threshold = sp.categorical ? 0 : sp.bin < fe->n_edges ? fe->edges[sp.bin] : INFINITY;
    tn->gain = sp.gain;
    sums total = {0, 0}, lt = {0, 0};
    for (int b = 0; b < CT_HIST_BINS; b++) {
        sums e = bin_sums(ft, parent, sp.feature, b);
        total = add(total, e);
        if (left[b]) lt = add(lt, e);
    }
    set_totals(ft, &ft->nodes[li], lt);
    set_totals(ft, &ft->nodes[ri], subtract(total, lt));
    if (last || (!may_split(ft, &ft->nodes[li]) && !may_split(ft, &ft->nodes[ri]))) {
        hist_put(ft, parent);
        ft->nodes[li].open = ft->nodes[ri].open = 0;
        return CT_OK;
    }
    /* the smaller child by global count is built; the same choice on every rank */
    int small = sp.n_left <= sp.n_right ? li : ri, large = small == li ? ri : li;
    int64_t *hs = NULL;
    ct_status s = build_hist(ft, ft->nodes[small].start, ft->nodes[small].n_local, &hs);
    if (s != CT_OK) {
        hist_put(ft, parent);
        return s;
    }
    ct_op_hist_sub(parent, parent, hs, ft->hist_len);
    ft->nodes[small].hist = hs;
    ft->nodes[large].hist = parent;
    prepare_node(ft, &ft->nodes[li]);
    prepare_node(ft, &ft->nodes[ri]);
    return CT_OK;
}

/* The open node to split next: leaf-wise the best gain (lowest id on a
 * tie), depth-wise the first in creation (breadth-first) order. */
static int next_node(const fitter *ft)
{
    int best = -1;
    for (int i = 0; i < ft->n_nodes; i++) {
        const grow_node *g = &ft->nodes[i];
        if (!g->open) continue;
        if (ft->p->depthwise) return i;
        if (best < 0 || g->split.gain > ft->nodes[best].split.gain) best = i;
    }
    return best;
}

/* Quantise column c of g/h into gc/hq with scales shared by all ranks. */
static ct_status quantise(fitter *ft, int c)
{
    double mx[2] = {0, 0};
    for (int64_t i = 0; i < ft->n; i++) {
        double a = fabs(ft->g[i * ft->k + c]), b = ft->h[i * ft->k + c];
        mx[0] = a > mx[0] ? a : mx[0];
        mx[1] = b > mx[1] ? b : mx[1];
    }
    CT_TRY(ct_comm_allreduce_max_f64(ft->comm, mx, 2));
    int lbits = 1;
    while (((int64_t)1 << lbits) < ft->n_global) lbits++;
    /* |sum of gc| < 2^62: count below 2^cbits, gradient quanta below 2^(62 - cbits - lbits) */
    double gq_max = ldexp(1.0, 62 - ft->cbits - lbits), hq_max = ldexp(1.0, 62 - lbits);
    ft->g_unit = mx[0] > 0 ? mx[0] / gq_max : 1;
    ft->h_unit = ft->W == 2 ? (mx[1] > 0 ? mx[1] / hq_max : 1) : 1;
    double gs = 1 / ft->g_unit, hs = 1 / ft->h_unit;
#pragma omp parallel for schedule(static) if (ft->n > PAR_ROWS)
    for (int64_t i = 0; i < ft->n; i++) {
        int64_t q = llrint(ft->g[i * ft->k + c] * gs);
        ft->gh[i * ft->W] = q * ((int64_t)1 << ft->cbits) + 1;
        if (ft->W == 2) ft->gh[i * 2 + 1] = llrint(ft->h[i * ft->k + c] * hs);
    }
    return CT_OK;
}

/* Grow tree c of this iteration into t; the training scores get its leaves. */
static ct_status grow_tree(fitter *ft, int c, ct_tree *t)
{
    CT_TRY(quantise(ft, c));
    for (int64_t i = 0; i < ft->n; i++) ft->rows[i] = (int32_t)i;
    ft->n_nodes = 0;
    grow_node *root;
    CT_TRY(add_node(ft, t, 0, 0, ft->n, &root));
    CT_TRY(build_hist(ft, 0, ft->n, &root->hist));
    prepare_node(ft, root);
    int leaves = 1, max_leaves = ft->p->max_leaf_nodes;
    ct_status s = CT_OK;
    for (int gi; s == CT_OK && (max_leaves <= 0 || leaves < max_leaves) && (gi = next_node(ft)) >= 0; leaves++)
        s = split_node(ft, t, gi, max_leaves > 0 && leaves + 1 >= max_leaves);
    for (int i = 0; i < ft->n_nodes; i++) {
        grow_node *g = &ft->nodes[i];
        ct_tree_node *tn = &t->nodes[g->id];
        tn->count = g->count;
        if (g->hist) hist_put(ft, g->hist);
        g->hist = NULL;
        if (tn->left >= 0) continue;
        tn->value = node_value(ft, g);
        for (int64_t r = g->start; r < g->start + g->n_local; r++) ft->raw[(int64_t)ft->rows[r] * ft->k + c] += tn->value;
    }
    return s;
}

/* The gradients of the current scores into g, h and, when out is not
 * NULL, the training loss over all ranks: per-row losses in fixed point
 * (scale from the global maximum), so the sum is exact and
 * rank-independent. */
static ct_status gradients(fitter *ft, const double *cw, double *out)
{
    double mx = 0, *l = ft->loss;
    int k = ft->k;
#pragma omp parallel for schedule(static) reduction(max : mx) if (ft->n > PAR_ROWS)
    for (int64_t i = 0; i < ft->n; i++) {
        double w = row_weight(cw, ft->y[i]);
        l[i] = w * row_grad(ft->m, ft->raw + i * k, ft->y[i], w, ft->g + i * k, ft->h + i * k);
        mx = l[i] > mx ? l[i] : mx;
    }
    if (!out) return CT_OK;
    CT_TRY(ct_comm_allreduce_max_f64(ft->comm, &mx, 1));
    int lbits = 1;
    while (((int64_t)1 << lbits) < ft->n_global) lbits++;
    double unit = mx > 0 ? mx / ldexp(1.0, 62 - lbits) : 1;
    int64_t sum = 0; /* integers: the same sum in any order */
#pragma omp parallel for schedule(static) reduction(+ : sum) if (ft->n > PAR_ROWS)
    for (int64_t i = 0; i < ft->n; i++) sum += llrint(l[i] / unit);
    CT_TRY(ct_comm_allreduce_i64(ft->comm, &sum, 1));
    *out = (double)sum * unit / ft->total_w;
    return CT_OK;
}

static double val_loss(const fitter *ft, const double *cw)
{
    double s = 0, sw = 0;
    for (int64_t i = 0; i < ft->val->n; i++) {
        double w = row_weight(cw, ft->val->y[i]);
        s += w * row_loss(ft->m, ft->vraw + i * ft->k, ft->val->y[i]);
        sw += w;
    }
    return sw > 0 ? s / sw : 0;
}

/* sklearn's _should_stop on scores = -losses[0..n]: stop when none of
 * the last n_iter_no_change beats the one before them by more than tol. */
static int should_stop(const double *loss, int n, int n_iter_no_change, double tol)
{
    int ref = n_iter_no_change + 1;
    if (n + 1 < ref) return 0;
    double reference = -loss[n + 1 - ref] + tol;
    for (int i = n + 2 - ref; i <= n; i++)
        if (-loss[i] > reference) return 0;
    return 1;
}

static ct_status grow_record(ct_trees *m, int iters)
{
    if (iters <= m->cap_iter) return CT_OK;
    int cap = iters;
    ct_tree *t = realloc(m->trees, sizeof *t * (size_t)cap * (size_t)m->k);
    if (t) m->trees = t;
    double *tl = t ? realloc(m->train_loss, sizeof *tl * (size_t)(cap + 1)) : NULL;
    if (tl) m->train_loss = tl;
    double *vl = tl ? realloc(m->val_loss, sizeof *vl * (size_t)(cap + 1)) : NULL;
    if (!vl) return CT_FAIL(CT_ERR_NOMEM, "boosted trees: %d iterations", iters);
    m->val_loss = vl;
    memset(m->trees + (size_t)m->cap_iter * (size_t)m->k, 0, sizeof *t * (size_t)(cap - m->cap_iter) * (size_t)m->k);
    m->cap_iter = cap;
    return CT_OK;
}

/* Scores of the trees so far on this rank's rows and the validation part
 * (a fresh fit: the baseline; a resumed one: every tree, in order). */
static void initial_scores(fitter *ft)
{
    const ct_trees *m = ft->m;
    int k = ft->k;
#pragma omp parallel for schedule(static) if (ft->n > PAR_ROWS)
    for (int64_t i = 0; i < ft->n; i++)
        for (int c = 0; c < k; c++) {
            double r = m->baseline[c];
            for (int it = 0; it < m->n_iter; it++) r += tree_value_bins(&m->trees[it * k + c], ft->bins + i * ft->F);
            ft->raw[i * k + c] = r;
        }
    for (int64_t i = 0; ft->val && i < ft->val->n; i++)
        for (int c = 0; c < k; c++) {
            double r = m->baseline[c];
            for (int it = 0; it < m->n_iter; it++) r += tree_value_bins(&m->trees[it * k + c], ft->vbins + i * ft->F);
            ft->vraw[i * k + c] = r;
        }
}

static void fitter_free(fitter *ft)
{
    free(ft->bins), free(ft->cbins), free(ft->raw), free(ft->g), free(ft->h), free(ft->loss), free(ft->gh);
    free(ft->rows), free(ft->tmp), free(ft->vbins), free(ft->vraw), free(ft->nodes);
    for (int i = 0; i < ft->n_pool; i++) free(ft->pool[i]);
    free(ft->pool);
}

static ct_status fitter_init(fitter *ft, ct_trees *m, const ct_trees_data *d, const ct_trees_params *p, ct_comm *comm)
{
    memset(ft, 0, sizeof *ft);
    ft->m = m, ft->p = p, ft->comm = comm;
    ft->F = m->n_features, ft->k = m->k;
    int64_t N = d->train.n, lo = N * comm->rank / comm->size, hi = N * (comm->rank + 1) / comm->size;
    ft->n = hi - lo, ft->n_global = N;
    ft->y = d->train.y + lo;
    ft->W = p->loss == CT_TREES_SQUARED_ERROR && !p->class_weight ? 1 : 2;
    ft->cbits = 1;
    while (((int64_t)1 << ft->cbits) <= N) ft->cbits++;
    ft->hist_len = (int64_t)ft->F * CT_HIST_BINS * ft->W;
    size_t n = (size_t)(ft->n > 0 ? ft->n : 1), F = (size_t)ft->F, k = (size_t)ft->k;
    ft->bins = malloc(n * F);
    ft->cbins = malloc(n * F);
    ft->raw = malloc(n * k * sizeof(double));
    ft->g = malloc(n * k * sizeof(double));
    ft->h = malloc(n * k * sizeof(double));
    ft->loss = malloc(n * sizeof(double));
    ft->gh = malloc(n * sizeof(int64_t) * 2);
    ft->rows = malloc(n * sizeof(int32_t));
    ft->tmp = malloc(n * sizeof(int32_t));
    if (d->val.n) {
        ft->val = &d->val;
        ft->vbins = malloc((size_t)d->val.n * F);
        ft->vraw = malloc((size_t)d->val.n * k * sizeof(double));
    }
    if (!ft->bins || !ft->cbins || !ft->raw || !ft->g || !ft->h || !ft->loss || !ft->gh || !ft->rows || !ft->tmp ||
        (d->val.n && (!ft->vbins || !ft->vraw)))
        return CT_FAIL(CT_ERR_NOMEM, "boosted trees: buffers for %lld rows of %d features", (long long)ft->n, ft->F);
    CT_TRY(bin_rows(m, d->train.x + lo * ft->F, ft->n, ft->bins, ft->cbins));
    if (ft->val) CT_TRY(bin_rows(m, d->val.x, d->val.n, ft->vbins, NULL));
    double tw = 0; /* weights are per class: count the classes (exact), then weigh them in class order */
    if (p->class_weight) {
        int64_t cnt[256] = {0};
        for (int64_t i = 0; i < N; i++) cnt[(int)d->train.y[i]]++;
        for (int c = 0; c < m->n_classes; c++) tw += (double)cnt[c] * p->class_weight[c];
    } else {
        tw = (double)N;
    }
    ft->total_w = tw > 0 ? tw : 1;
    return CT_OK;
}

/* Which features hold missing values in the training part (all rows). */
static void find_missing(ct_trees *m, const ct_dataset *d)
{
    int F = m->n_features;
    for (int f = 0; f < F; f++) m->features[f].has_missing = 0;
    for (int64_t i = 0; i < d->n; i++)
        for (int f = 0; f < F; f++)
            if (isnan(d->x[i * F + f])) m->features[f].has_missing = 1;
}

/* sklearn's train_test_split(test_size=fraction, stratify=y for
 * classifiers), with our seeded permutation: ceil(fraction * n) rows go
 * to validation, per class in proportion (largest remainders first). */
static ct_status split_validation(ct_trees_data *d, const ct_trees *m, double fraction, uint64_t seed)
{
    int64_t n = d->train.n, nv = (int64_t)ceil(fraction * (double)n);
    if (nv < 1 || nv >= n)
        return CT_FAIL(CT_ERR_CONFIG, "[boosted_trees] validation_fraction = %g of %lld training samples leaves %lld "
                       "for validation", fraction, (long long)n, (long long)nv);
    int64_t *perm = malloc(sizeof *perm * (size_t)n);
    unsigned char *to_val = calloc((size_t)n, 1);
    ct_status s = perm && to_val ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "validation split");
    if (s == CT_OK) {
        ct_rng r = ct_rng_make(seed, CT_RNG_SPLIT, 1);
        ct_rng_permutation(&r, perm, n);
        if (m->loss == CT_TREES_SQUARED_ERROR) {
            for (int64_t i = 0; i < nv; i++) to_val[perm[i]] = 1;
        } else {
            int64_t cnt[256] = {0}, want[256] = {0}, got = 0;
            double rem[256];
            for (int64_t i = 0; i < n; i++) cnt[(int)d->train.y[i]]++;
            for (int c = 0; c < m->n_classes; c++) {
                double e = (double)nv * (double)cnt[c] / (double)n;
                want[c] = (int64_t)floor(e);
                rem[c] = e - floor(e);
                got += want[c];
            }
            while (got < nv) {
                int b = 0;
                for (int c = 1; c < m->n_classes; c++)
                    if (rem[c] > rem[b]) b = c;
                want[b]++, rem[b] = -1, got++;
            }
            for (int64_t i = 0; i < n; i++) {
                int c = (int)d->train.y[perm[i]];
                if (want[c] > 0) to_val[perm[i]] = 1, want[c]--;
            }
        }
    }
    ct_dataset tr = d->train, va = d->train;
    tr.x = va.x = NULL, tr.y = va.y = NULL;
    if (s == CT_OK) {
        tr.n = n - nv, va.n = nv;
        tr.x = malloc(sizeof(float) * (size_t)(tr.n * tr.x_size));
        tr.y = malloc(sizeof(float) * (size_t)(tr.n * tr.y_size));
        va.x = malloc(sizeof(float) * (size_t)(va.n * va.x_size));
        va.y = malloc(sizeof(float) * (size_t)(va.n * va.y_size));
        if (!tr.x || !tr.y || !va.x || !va.y) s = CT_FAIL(CT_ERR_NOMEM, "validation split");
    }
    if (s == CT_OK) {
        int64_t a = 0, b = 0, xs = d->train.x_size, ys = d->train.y_size;
        for (int64_t i = 0; i < n; i++) { /* both parts keep file order */
            ct_dataset *dst = to_val[i] ? &va : &tr;
            int64_t j = to_val[i] ? b++ : a++;
            memcpy(dst->x + j * xs, d->train.x + i * xs, sizeof(float) * (size_t)xs);
            memcpy(dst->y + j * ys, d->train.y + i * ys, sizeof(float) * (size_t)ys);
        }
        ct_dataset_free(&d->train);
        d->train = tr;
        d->val = va;
    } else {
        ct_dataset_free(&tr);
        ct_dataset_free(&va);
    }
    free(perm);
    free(to_val);
    return s;
}

ct_status ct_trees_fit(ct_trees *m, ct_trees_data *d, const ct_trees_params *p, ct_comm *comm,
                       const ct_trees_hooks *hooks)
{
    ct_status s = CT_OK;
    if (p->early_stopping && !d->val.n && p->validation_fraction > 0)
        CT_TRY(split_validation(d, m, p->validation_fraction, p->seed));
    if (d->train.n < 1) return CT_FAIL(CT_ERR_DATA, "boosted trees: no training samples");
    if (d->train.n >= INT32_MAX)
        return CT_FAIL(CT_ERR_DATA, "boosted trees: %lld training samples; at most %d", (long long)d->train.n, INT32_MAX - 1);
    int fresh = m->n_iter == 0;
    if (fresh) {
        find_missing(m, &d->train);
        if (comm->rank == 0)
            CT_TRY(compute_edges(m, d->train.x, d->train.n, p->max_bins, p->subsample_bins, p->seed));
        CT_TRY(share_edges(m, comm));
        compute_baseline(m, &d->train, p->class_weight);
    }
    fitter ft;
    if ((s = fitter_init(&ft, m, d, p, comm)) != CT_OK) goto done;
    if ((s = grow_record(m, p->max_iter)) != CT_OK) goto done;
    initial_scores(&ft);
    /* the gradients of iteration it come with the loss after it - 1 */
    if ((s = gradients(&ft, p->class_weight, fresh ? &m->train_loss[0] : NULL)) != CT_OK) goto done;
    if (fresh) {
        m->val_loss[0] = ft.val ? val_loss(&ft, p->class_weight) : NAN;
    }
    for (int it = m->n_iter; it < p->max_iter && !m->early_stopped; it++) {
        double t0 = omp_get_wtime();
        for (int c = 0; c < ft.k && s == CT_OK; c++) {
            ct_tree *t = &m->trees[(size_t)it * (size_t)ft.k + (size_t)c];
            t->n_nodes = 0;
            s = grow_tree(&ft, c, t);
        }
        if (s != CT_OK) goto done;
        for (int64_t i = 0; ft.val && i < ft.val->n; i++)
            for (int c = 0; c < ft.k; c++)
                ft.vraw[i * ft.k + c] += tree_value_bins(&m->trees[it * ft.k + c], ft.vbins + i * ft.F);
        m->n_iter = it + 1;
        int want_loss = p->need_train_loss || (p->early_stopping && !ft.val);
        m->train_loss[it + 1] = NAN;
        if ((s = gradients(&ft, p->class_weight, want_loss ? &m->train_loss[it + 1] : NULL)) != CT_OK) goto done;
        m->val_loss[it + 1] = ft.val ? val_loss(&ft, p->class_weight) : NAN;
        if (p->early_stopping)
            m->early_stopped = should_stop(ft.val ? m->val_loss : m->train_loss, it + 1, p->n_iter_no_change, p->tol);
        int stop = 0;
        if (hooks && hooks->iteration_end &&
            (s = hooks->iteration_end(hooks->ctx, m, it + 1, omp_get_wtime() - t0, &stop)) != CT_OK)
            goto done;
        if (stop) break;
    }
done:
    fitter_free(&ft);
    return s;
}

void ct_trees_free(ct_trees *m)
{
    if (!m) return;
    for (int f = 0; m->features && f < m->n_features; f++) {
        ct_trees_feature *fe = &m->features[f];
        free(fe->name);
        free(fe->edges);
        for (int i = 0; i < fe->n_levels; i++) free(fe->levels[i]);
        free(fe->levels);
    }
    free(m->features);
    for (int i = 0; m->trees && i < m->cap_iter * m->k; i++) free(m->trees[i].nodes);
    free(m->trees);
    free(m->train_loss);
    free(m->val_loss);
    memset(m, 0, sizeof *m);
}
