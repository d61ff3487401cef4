/* The data a config names: the training source behind an input pipeline
 * (with augmentation and normalisation on its worker threads), and the
 * validation and test sets in memory, split and normalised as the [data]
 * and [augment] sections say. Normalisation statistics come from the
 * training part only and are kept in checkpoints. */
#ifndef CT_INPUTS_H
#define CT_INPUTS_H

#include "augment.h"
#include "config.h"
#include "dataset.h"
#include "text.h"

typedef struct ct_inputs {
    ct_stage *source;              /* the training source (owned); NULL when not read */
    int64_t n_train;               /* training samples: positions [0, n_train) of source */
    ct_dataset train;              /* set only when test_split split the file in memory */
    ct_dataset val, test;          /* n == 0 when absent; normalised */
    /* Normalisation, in Keras's order after augmentation: x *= rescale;
     * samplewise centre / std; x = (x - mean[c]) / std[c] over the last
     * axis (featurewise statistics, or per-feature for [data] standardize:
     * std holds the divisor, std + 1e-6 for featurewise as Keras). */
    double rescale;                /* 1 when not configured */
    int samplewise_center, samplewise_std;
    int64_t n_features;            /* entries of mean/std (the last axis) */
    float *mean, *std;             /* NULL when off */
    ct_augment_options aug;        /* the random transforms of training samples */
    int augment;                   /* any random transform configured */
    const char *train_path;        /* [data] train, for messages (the config's) */
    const char *labels_path;       /* [data] train_labels, or NULL */
    /* Text formats: the vocabulary built from the training part (or read
     * from a model file), used for every other file; owned. */
    ct_vocab *vocab;
} ct_inputs;

/* want_train = 0 reads only what evaluation needs (test, or validation). */
ct_status ct_inputs_load(const ct_config *cfg, int want_train, ct_inputs *out);
void ct_inputs_free(ct_inputs *in);

/* Open one source as the config's format says (labels may be NULL). */
ct_status ct_inputs_open(const ct_config *cfg, const char *path, const char *labels, ct_stage **out);
/* The same; no_label = 1 reads a CSV whose columns are all features (an
 * unlabelled file to predict on). */
ct_status ct_inputs_open_as(const ct_config *cfg, const char *path, const char *labels, int no_label, ct_stage **out);

/* 1 when [data] format is text or text_lm. */
int ct_inputs_is_text(const ct_config *cfg);
/* The text options [data] gives (data/text.h). */
ct_status ct_inputs_text_options(const ct_config *cfg, ct_text_options *o);
/* A text file with vocabulary `vocab` (NULL: built from its training
 * part, train_part as ct_text_open). With labels_optional, a file without
 * the label column is read with y = 0 (raw text for predict). */
ct_status ct_inputs_open_text(const ct_config *cfg, const char *path, const ct_vocab *vocab, double train_part,
                              int labels_optional, ct_stage **out);

/* This rank's training batches: the [data] pipeline over the training
 * source with augmentation and normalisation mapped on its workers. The
 * pipeline borrows the source: close it before ct_inputs_free. */
ct_status ct_inputs_pipeline(ct_inputs *in, const ct_config *cfg, uint64_t seed, int64_t batch_size, int rank,
                             int world, ct_stage **out);

/* The decimal the user wrote for a float key ("0.3", not 0.30000001f). */
double ct_inputs_decimal(float f);

/* Apply the stored normalisation (rescale, standardize) to raw samples. */
void ct_inputs_normalize(const ct_inputs *in, ct_dataset *d);
void ct_inputs_normalize_sample(const ct_inputs *in, float *x, int64_t size);

#endif
