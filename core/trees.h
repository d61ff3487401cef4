/* Gradient-boosted decision trees on histograms, data-parallel over the
 * communicator: the model of [model] kind = boosted_trees.
 *
 * Fidelity: scikit-learn 1.2's HistGradientBoostingClassifier and
 * HistGradientBoostingRegressor, keys and defaults ([boosted_trees] in
 * ctrain.proto): losses log_loss (binary with 2 classes, softmax with
 * more, one tree per class and iteration) and squared_error; at most 255
 * quantile bins per feature from (a seeded subsample of) the training
 * part, missing values in a bin of their own with the direction learned
 * per split (both scans), categorical features split by sorting their
 * categories by gradient / (hessian + 10); split gain
 * G_L^2/(H_L+l2) + G_R^2/(H_R+l2) - G^2/(H+l2) with min_samples_leaf and a
 * minimum hessian of 1e-3 per child; leaves -lr * G / (H + l2); leaf-wise
 * growth (best gain first, max_leaf_nodes) or depth-wise, max_depth;
 * class weights; early stopping on a validation part by sklearn's rule
 * (stop when none of the last n_iter_no_change scores beats the one
 * before them by more than tol).
 *
 * Exactness: gradients and hessians are quantised per tree to integers
 * (scaled by the global maximum, taken by an allreduce of maxima) and a
 * row's count is packed into the low bits of its gradient, so every
 * histogram is an exact int64 sum (ops/hist.h). Split decisions, leaf
 * values and the losses early stopping compares (per-row losses in fixed
 * point) are then the same on every rank and for any number of ranks or
 * threads. Bin edges are computed by rank 0 from a seeded subsample of
 * the global training rows and broadcast. */
#ifndef CT_TREES_H
#define CT_TREES_H

#include <stdint.h>
#include <stdio.h>

#include "comm.h"
#include "config.h"
#include "dataset.h"
#include "status.h"

typedef enum ct_trees_loss {
    CT_TREES_SQUARED_ERROR = 0,
    CT_TREES_BINARY = 1,     /* log loss, 2 classes, one tree per iteration */
    CT_TREES_MULTICLASS = 2  /* log loss, K > 2 classes, K trees per iteration */
} ct_trees_loss;

typedef struct ct_tree_node {
    int32_t left, right;     /* child node indices; -1 for a leaf */
    int32_t feature;         /* split feature */
    int32_t depth;
    uint8_t missing_left;    /* missing values (and unknown categories) go left */
    uint8_t categorical;     /* split on a category set rather than a threshold */
    uint16_t bin;            /* numeric: bins <= bin go left */
    double threshold;        /* numeric: x <= threshold goes left (inf: every non-missing value) */
    uint32_t cats[8];        /* categorical: bit c set = category code c goes left */
    double value;            /* leaf: contribution to the raw score (learning rate applied) */
    double gain;             /* split: gain (feature importance) */
    int64_t count;           /* training samples that reached the node (all ranks) */
} ct_tree_node;

typedef struct ct_tree {
    ct_tree_node *nodes;     /* nodes[0] is the root; children come after their parent */
    int32_t n_nodes, cap;
} ct_tree;

typedef struct ct_trees_feature {
    char *name;              /* header name, or "f<index>" */
    int categorical;
    int has_missing;         /* the training part held missing values */
    int n_edges;             /* numeric: thresholds; bins 0..n_edges */
    double *edges;           /* x <= edges[b] and x > edges[b-1]: bin b */
    int n_levels;            /* categorical: the vocabulary (code = index) */
    char **levels;
} ct_trees_feature;

typedef struct ct_trees {
    ct_trees_loss loss;
    int n_features;
    int n_classes;           /* 0 for regression */
    int k;                   /* trees per iteration (n_classes for multiclass, else 1) */
    double baseline[256];    /* raw score before any tree, per tree of an iteration */
    ct_trees_feature *features;
    int n_iter;              /* iterations done */
    ct_tree *trees;          /* n_iter * k, iteration-major */
    int cap_iter;
    /* the training record: loss per iteration (index 0 = the baseline) */
    double *train_loss, *val_loss; /* val_loss NULL-valued (NaN) without validation */
    int early_stopped;
} ct_trees;

/* A data set read for the trees: features in model space (numeric
 * values, categorical ones as the model's category codes; NaN for
 * missing values and unknown categories), labels as read. */
typedef struct ct_trees_data {
    ct_dataset train, val, test; /* n == 0 when absent */
} ct_trees_data;

/* Parameters the fit takes from [boosted_trees], with sklearn's defaults. */
typedef struct ct_trees_params {
    ct_trees_loss loss;
    double learning_rate, l2;
    int max_iter, max_leaf_nodes, max_depth, min_samples_leaf, max_bins;
    int depthwise;
    int early_stopping;      /* resolved: 0 or 1 */
    int n_iter_no_change;
    double tol, validation_fraction;
    int64_t subsample_bins;
    uint64_t seed;
    double *class_weight;    /* n_classes entries or NULL */
    int need_train_loss;     /* compute the training loss every iteration (else only when early
                              * stopping watches it; NaN in the record otherwise) */
} ct_trees_params;

/* Hooks between iterations (all may be NULL). `iteration` counts from 1;
 * *stop = 1 ends training after it. Called on every rank. */
typedef struct ct_trees_hooks {
    void *ctx;
    ct_status (*iteration_end)(void *ctx, const ct_trees *m, int iteration, double seconds, int *stop);
} ct_trees_hooks;

/* Read [data] for the trees: train (when want_train), the validation and
 * test parts (test_split, validation_split or files), with text
 * categories encoded through the training vocabulary into *m (which the
 * call fills: features, names, vocabularies) or, when m->features is
 * already set (a loaded model), through m's. Labels are checked against
 * the loss: binary log loss wants 0/1, log loss class indices; a label
 * that is not is CT_ERR_DATA naming the file and line (CSV) or the
 * sample. A categorical feature with more than max_bins levels is
 * CT_ERR_DATA naming the file and the line of the first extra level. */
ct_status ct_trees_data_load(const ct_config *cfg, int want_train, ct_trees *m, ct_trees_data *out);
void ct_trees_data_free(ct_trees_data *d);

/* One more file (predict's input) into m's model space, read as [data]
 * says (labels, when the file has them, are not checked). */
ct_status ct_trees_read(const ct_config *cfg, const ct_trees *m, const char *path, ct_dataset *out);

/* Parameters from cfg for the training part `train` (early_stopping =
 * auto looks at its size, class_weight = balanced at its classes). */
ct_status ct_trees_params_from_config(const ct_config *cfg, const ct_trees *m, const ct_dataset *train,
                                      ct_trees_params *p);
void ct_trees_params_free(ct_trees_params *p);

/* Train (or continue, when m->n_iter > 0: a resumed run grows the same
 * trees as one that was not stopped). Every rank passes the same d (all
 * of the training part) and p; each bins and builds histograms on its
 * shard, rows [n * rank / size, n * (rank + 1) / size). The validation
 * part is d->val, or, with early stopping and an empty d->val, a
 * validation_fraction split of d->train made here. m->loss, n_classes, k
 * and features must be set (ct_trees_data_load). Collective. */
ct_status ct_trees_fit(ct_trees *m, ct_trees_data *d, const ct_trees_params *p, ct_comm *comm,
                       const ct_trees_hooks *hooks);

/* raw (n, k) scores of x (n, n_features) in model space. */
void ct_trees_predict_raw(const ct_trees *m, const float *x, int64_t n, double *raw);
/* out (n, k): probabilities (binary: p(class 1), one column) or values. */
void ct_trees_predict(const ct_trees *m, const float *x, int64_t n, float *out);

/* Loss (sklearn's: log loss, or half the squared error) and, for
 * classifiers, accuracy, or for regression the mean squared and absolute
 * errors, of d. */
typedef struct ct_trees_scores {
    double loss, accuracy, mse, mae;
} ct_trees_scores;
ct_status ct_trees_evaluate(const ct_trees *m, const ct_dataset *d, ct_trees_scores *out);

void ct_trees_free(ct_trees *m);

/* Model files (HDF5): the trees, features and training record, and the
 * packed config (so the file alone rebuilds the data loading). Written
 * to "<path>.tmp" and renamed. Layout in FORMATS.md. */
ct_status ct_trees_save(const char *path, const ct_config *cfg, const ct_trees *m);
ct_status ct_trees_load(const char *path, ct_config **cfg, ct_trees *m);
/* 1 when path is an HDF5 file holding boosted trees. */
int ct_trees_file_is(const char *path);

/* Every tree as indented text; summary: counts, depths and importances. */
void ct_trees_dump(const ct_trees *m, FILE *out);
void ct_trees_summary(const ct_trees *m, const char *name, FILE *out);

#endif
