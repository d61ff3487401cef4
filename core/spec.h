/* Parser for small call-like specs used in config values:
 *   "he_normal", "l2(0.01)", "l1_l2(l1=0.01, l2=0.001)", "constant(0.5)",
 *   "random_normal(mean=0, stddev=0.05)".
 * Positional arguments get the names the caller lists, in order. */
#ifndef CT_SPEC_H
#define CT_SPEC_H

#include "status.h"

#define CT_SPEC_MAX_ARGS 6

typedef struct ct_spec {
    char name[48];
    int n_args;
    char keys[CT_SPEC_MAX_ARGS][24];
    double vals[CT_SPEC_MAX_ARGS];
} ct_spec;

/* `positional` names the arguments that may be given without "key=" (NULL
 * terminated). Unknown keys (not in `allowed`) are errors naming them. */
ct_status ct_spec_parse(const char *text, const char *const *allowed, ct_spec *out);
/* Value of `key`, or `dflt` when absent. */
double ct_spec_get(const ct_spec *s, const char *key, double dflt);

#endif
