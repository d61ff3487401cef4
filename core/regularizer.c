/* l1 / l2 / l1_l2 regularizers. */
#include "regularizer.h"

#include <math.h>
#include <string.h>

#include "spec.h"

ct_status ct_regularizer_parse(const char *spec, ct_regularizer *out)
{
    out->l1 = out->l2 = 0;
    if (!spec || !spec[0] || strcmp(spec, "none") == 0 || strcmp(spec, "None") == 0) return CT_OK;
    ct_spec s;
    static const char *const one_l1[] = {"l1", NULL}, *const one_l2[] = {"l2", NULL},
                             *const both[] = {"l1", "l2", NULL};
    const char *const *allowed = both;
    if (strncmp(spec, "l1_l2", 5) == 0) allowed = both;
    else if (strncmp(spec, "l1", 2) == 0) allowed = one_l1;
    else if (strncmp(spec, "l2", 2) == 0) allowed = one_l2;
    CT_TRY(ct_spec_parse(spec, allowed, &s));
    if (strcmp(s.name, "l1") == 0) {
        out->l1 = ct_spec_get(&s, "l1", 0.01);
    } else if (strcmp(s.name, "l2") == 0) {
        out->l2 = ct_spec_get(&s, "l2", 0.01);
    } else if (strcmp(s.name, "l1_l2") == 0) {
        out->l1 = ct_spec_get(&s, "l1", 0.01);
        out->l2 = ct_spec_get(&s, "l2", 0.01);
    } else {
        return CT_FAIL(CT_ERR_CONFIG, "unknown regularizer '%s': known are l1, l2, l1_l2", s.name);
    }
    if (out->l1 < 0 || out->l2 < 0 || !isfinite(out->l1) || !isfinite(out->l2))
        return CT_FAIL(CT_ERR_CONFIG, "regularizer '%s': factors must be finite and >= 0", spec);
    return CT_OK;
}

double ct_regularizer_apply(const ct_regularizer *r, const float *w, float *g, int64_t n)
{
    double pen = 0;
    const float l1 = (float)r->l1, l2x2 = (float)(2 * r->l2);
    for (int64_t i = 0; i < n; i++) {
        pen += r->l1 * fabs(w[i]) + r->l2 * (double)w[i] * w[i];
        g[i] += l1 * (float)((w[i] > 0) - (w[i] < 0)) + l2x2 * w[i];
    }
    return pen;
}
