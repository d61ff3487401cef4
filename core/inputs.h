/* The data sets a config names: train, validation and test, read through
 * the data/ sources, split and normalised as the [data] and [augment]
 * sections say. Feature statistics come from the training part only. */
#ifndef CT_INPUTS_H
#define CT_INPUTS_H

#include "config.h"
#include "dataset.h"

typedef struct ct_inputs {
    ct_dataset train, val, test;   /* n == 0 when absent */
    int64_t n_features;
    float *mean, *std;             /* standardize: training statistics, else NULL */
    double rescale;                /* 1 when not configured */
} ct_inputs;

/* want_train = 0 reads only what evaluation needs (test, or validation). */
ct_status ct_inputs_load(const ct_config *cfg, int want_train, ct_inputs *out);
void ct_inputs_free(ct_inputs *in);

/* Open one source as the config's format says (labels may be NULL). */
ct_status ct_inputs_open(const ct_config *cfg, const char *path, const char *labels, ct_stage **out);

/* Apply the stored normalisation (rescale, standardize) to raw samples. */
void ct_inputs_normalize(const ct_inputs *in, ct_dataset *d);

#endif
