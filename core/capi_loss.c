/* Losses and metrics registered through the public API (ct_register_loss,
 * ct_register_metric), and their evaluation for loss.c and metrics.c.
 * Tape-defined losses wrap the predictions and targets as eager tensors
 * without copying and seed the tape with each sample's weight times the
 * reduction's scale, so their gradient is exactly the one a hand-written
 * loss would produce. */
#include <stdlib.h>
#include <string.h>

#include "capi_loss.h"
#include "eager_impl.h"
#include "loss.h"
#include "metrics.h"

#define CUSTOM_MAX 32

static ct_loss_def losses[CUSTOM_MAX];
static int n_losses;
static ct_metric_def metrics[CUSTOM_MAX];
static int n_metrics;

static int builtin_name(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(name, names[i])) return 1;
    return 0;
}

ct_status ct_register_loss(const ct_loss_def *def)
{
    if (!def || !def->name || !*def->name || (!def->compute && !def->call))
        return CT_FAIL(CT_ERR_USAGE, "ct_register_loss: needs a name and compute() or call()");
    int n;
    const char *const *names = ct_loss_names(&n);
    if (builtin_name(def->name, names, n))
        return CT_FAIL(CT_ERR_USAGE, "ct_register_loss: '%s' is a built-in loss", def->name);
    int i = ct_custom_loss_find(def->name);
    if (i < 0) {
        if (n_losses == CUSTOM_MAX) return CT_FAIL(CT_ERR_USAGE, "ct_register_loss: at most %d losses", CUSTOM_MAX);
        i = n_losses++;
    }
    losses[i] = *def;
    return CT_OK;
}

ct_status ct_register_metric(const ct_metric_def *def)
{
    if (!def || !def->name || !*def->name || !def->compute)
        return CT_FAIL(CT_ERR_USAGE, "ct_register_metric: needs a name and compute()");
    int n;
    const char *const *names = ct_metric_names(&n);
    if (builtin_name(def->name, names, n))
        return CT_FAIL(CT_ERR_USAGE, "ct_register_metric: '%s' is a built-in metric", def->name);
    int i = ct_custom_metric_find(def->name);
    if (i < 0) {
        if (n_metrics == CUSTOM_MAX) return CT_FAIL(CT_ERR_USAGE, "ct_register_metric: at most %d metrics", CUSTOM_MAX);
        i = n_metrics++;
    }
    metrics[i] = *def;
    return CT_OK;
}

int ct_custom_loss_find(const char *name)
{
    for (int i = 0; name && i < n_losses; i++)
        if (!strcmp(losses[i].name, name)) return i;
    return -1;
}

int ct_custom_metric_find(const char *name)
{
    for (int i = 0; name && i < n_metrics; i++)
        if (!strcmp(metrics[i].name, name)) return i;
    return -1;
}

const char *ct_custom_loss_name(int idx) { return idx >= 0 && idx < n_losses ? losses[idx].name : "?"; }
int ct_custom_loss_sparse(int idx) { return idx >= 0 && idx < n_losses && losses[idx].sparse_targets; }

static ct_status taped(const ct_loss_def *def, const float *pred, const float *target, const float *w, int64_t n,
                       int64_t d, float *grad, float scale, float *per_sample)
{
    int64_t pd[2] = {n, d}, td[2] = {n, def->sparse_targets ? 1 : d};
    ct_status st = ct_scope_begin();
    if (st != CT_OK) return st;
    ct_tape *tape = NULL;
    ct_eager *p = ct_eager_wrap(2, pd, (float *)pred), *y = ct_eager_wrap(2, td, (float *)target);
    if (grad && (st = ct_tape_create(&tape)) != CT_OK) goto done;
    ct_eager *out = def->call(p, y);
    ct_tape_stop(tape);
    if (!out) {
        st = ct_error_status() != CT_OK ? ct_error_status() : CT_ERR_RUNTIME;
        ct_error_prefix("loss '%s': ", def->name);
        goto done;
    }
    if (ct_eager_numel(out) != n) {
        st = CT_FAIL(CT_ERR_SHAPE, "loss '%s': call() gave %lld values for %lld samples, expected one per sample",
                     def->name, (long long)ct_eager_numel(out), (long long)n);
        goto done;
    }
    memcpy(per_sample, ct_eager_data(out), sizeof(float) * (size_t)n);
    if (grad) {
        float *seed = malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!seed) {
            st = CT_FAIL(CT_ERR_NOMEM, "loss '%s': out of memory", def->name);
            goto done;
        }
        for (int64_t i = 0; i < n; i++) seed[i] = (w ? w[i] : 1.0f) * scale;
        memset(grad, 0, sizeof(float) * (size_t)(n * d));
        st = ct_tape_backward_into(tape, out, seed, 1, &p, &grad);
        free(seed);
    }
done:
    ct_tape_destroy(tape);
    ct_scope_end();
    return st;
}

double ct_custom_loss_compute(int idx, const float *pred, const float *target, const float *w, int64_t n, int64_t d,
                              float *grad, float grad_scale, float *per_sample, ct_status *status)
{
    const ct_loss_def *def = &losses[idx];
    float *own = per_sample ? NULL : malloc(sizeof(float) * (size_t)(n ? n : 1));
    float *ps = per_sample ? per_sample : own;
    ct_status st = ps ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "loss '%s': out of memory", def->name);
    if (st == CT_OK && def->call) {
        st = taped(def, pred, target, w, n, d, grad, grad_scale, ps);
    } else if (st == CT_OK) {
        st = def->compute(pred, target, n, d, ps, grad);
        if (st != CT_OK)
            ct_error_prefix("loss '%s': ", def->name);
        else if (grad)
            for (int64_t i = 0; i < n; i++) {
                float s = (w ? w[i] : 1.0f) * grad_scale;
                for (int64_t j = 0; j < d; j++) grad[i * d + j] *= s;
            }
    }
    double total = 0;
    for (int64_t i = 0; st == CT_OK && i < n; i++) total += (w ? w[i] : 1.0) * ps[i];
    free(own);
    if (status) *status = st;
    return st == CT_OK ? total : 0.0;
}

void ct_custom_metric_update(int idx, const float *pred, const float *target, const float *w, int64_t n, int64_t d,
                             double *sum, double *count)
{
    float small[256], *v = n <= 256 ? small : malloc(sizeof(float) * (size_t)n);
    if (!v) return;
    metrics[idx].compute(pred, target, n, d, v);
    for (int64_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        *sum += wi * v[i];
        *count += wi;
    }
    if (v != small) free(v);
}
