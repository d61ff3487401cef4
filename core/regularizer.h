/* Weight regularizers l1, l2, l1_l2 (Keras's factors default to 0.01):
 * penalty = l1 * sum|w| + l2 * sum w^2, added to the loss and its gradient. */
#ifndef CT_REGULARIZER_H
#define CT_REGULARIZER_H

#include <stdint.h>

#include "status.h"

typedef struct ct_regularizer {
    double l1, l2;
} ct_regularizer;

/* "l2", "l2(0.001)", "l1_l2(l1=0.01, l2=0.01)"; an empty string or NULL
 * gives no regularization. */
ct_status ct_regularizer_parse(const char *spec, ct_regularizer *out);

static inline int ct_regularizer_active(const ct_regularizer *r) { return r->l1 != 0 || r->l2 != 0; }

/* Returns the penalty and adds its gradient to g (n values). */
double ct_regularizer_apply(const ct_regularizer *r, const float *w, float *g, int64_t n);

#endif
