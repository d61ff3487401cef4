/* A compiled model: graph + loss + metrics + optimizer, and the loops
 * fit / evaluate / predict over in-memory data sets.
 *
 * Keras semantics: the loss shown is the running mean over the epoch's
 * batches weighted by batch size, including regularization penalties;
 * metrics are (sum, count) means over samples; class_weight scales each
 * sample's loss; validation runs in inference mode. When the output layer
 * ends in softmax (sigmoid) and the loss is (sparse) categorical (binary)
 * cross-entropy, the loss is computed from the logits, as Keras does.
 *
 * Several outputs (Keras's compile with dicts): each output has its own
 * loss (or none), loss weight and metrics; "loss" is sum_k weight_k *
 * loss_k plus penalties, and the logs also hold "<output>_loss" (the
 * unweighted loss) and "<output>_<metric>" for each output, as Keras
 * names them. Targets travel as one flat row per sample, the outputs'
 * targets concatenated in output order (outputs with neither loss nor
 * metrics take none). Outputs of any rank: the loss and metrics cover
 * every position (ct_loss_compute_positions), as Keras reduces them. */
#ifndef CT_MODEL_H
#define CT_MODEL_H

#include <signal.h>

#include "comm.h"
#include "grad_sync.h"
#include "config.h"
#include "dataset.h"
#include "graph.h"
#include "loss.h"
#include "metrics.h"
#include "optim.h"

#define CT_MAX_METRICS 40
#define CT_MAX_LOGS (2 * CT_MAX_METRICS + 4)

typedef struct ct_logs {
    int n;
    char names[CT_MAX_LOGS][48];
    double values[CT_MAX_LOGS];
} ct_logs;

void ct_logs_set(ct_logs *l, const char *name, double v);
/* Returns 1 and *v when `name` is in the logs. */
int ct_logs_get(const ct_logs *l, const char *name, double *v);

/* Hooks into fit (the launcher's progress bar, callbacks). Any may be
 * NULL. Setting *stop ends training after the current batch or epoch; a
 * status other than CT_OK ends fit with that status. `step` counts the
 * batches of the epoch from 1. Hooks may change m->lr. */
typedef struct ct_fit_hooks {
    void *ctx;
    ct_status (*epoch_begin)(void *ctx, int epoch, int epochs, int64_t steps);
    ct_status (*batch_end)(void *ctx, int epoch, int64_t step, int64_t steps, const ct_logs *logs, int *stop);
    /* `seconds` is the epoch's wall time; hooks may add entries to logs. */
    ct_status (*epoch_end)(void *ctx, int epoch, ct_logs *logs, double seconds, int *stop);
    ct_status (*train_end)(void *ctx, int epoch);
} ct_fit_hooks;

/* Where training stands, saved in checkpoints so a run resumes exactly:
 * the epoch order is a function of (seed, epoch), so (epoch, batch) is
 * the whole data cursor. */
typedef struct ct_train_state {
    int epoch;                 /* current epoch, from 0 */
    int64_t batch;             /* batches of it already done */
    double loss_sum;           /* sum of batch loss x batch size this epoch */
    int64_t seen;              /* samples this epoch */
} ct_train_state;

typedef struct ct_model_output {
    int node;                  /* graph node */
    const char *name;          /* the node's name */
    int has_loss;
    ct_loss loss;
    double weight;             /* loss_weights; 1 by default */
    int fused;                 /* loss from the logits: the loss writes dL/dz */
    int64_t d, positions;      /* last axis; values per sample / d */
    int64_t y_size, y_offset;  /* targets per sample, and their first column in a flat target row */
    int loss_metric;           /* index in metrics[] of "<name>_loss"; -1 with one output */
    float *y;                  /* planned: targets split out of flat rows (several outputs) */
} ct_model_output;

typedef struct ct_model {
    ct_graph *graph;
    int n_outputs;
    ct_model_output outputs[CT_GRAPH_MAX_IO];
    ct_loss loss;              /* output 0's (single-output code) */
    int fused;                 /* output 0's */
    int n_metrics;             /* every output's, named as in the logs */
    ct_metric metrics[CT_MAX_METRICS];
    int metric_output[CT_MAX_METRICS]; /* which output each metric reads */
    ct_optimizer *opt;
    double lr;
    int64_t batch_size;
    uint64_t seed;
    uint64_t step;             /* optimizer steps taken */
    int64_t out_dim, y_size;   /* output 0's last axis; targets per sample (all outputs) */
    int64_t pred_size;         /* prediction values per sample: every output's, concatenated */
    int n_class_weight;
    double *class_weight;
    /* step buffers, sized by ct_model_plan */
    int64_t cap;
    float *bx, *by, *bw, *loss_grad, *per_sample;
    ct_train_state state;
    /* data parallelism: NULL or a world of one trains alone */
    ct_comm *comm;
    ct_reduce_algo algo;
    int fp16;                  /* fp16 gradients on the wire */
    ct_grad_sync *sync;        /* bucketed allreduce overlapping backward */
    int64_t bucket_bytes;      /* as set by ct_model_set_comm */
    int fail_rank;             /* test aid (CT_TEST_FAIL_RANK), -1 when off */
    uint64_t fail_step;
    /* A stop request any rank may raise (the launcher points it at its
     * signal flag): summed over the ranks with each step's totals, so
     * every rank learns of it after the same step; NULL = none. */
    volatile const sig_atomic_t *stop_vote;
    double stop_votes;         /* ranks that raised it, as of the last step */
} ct_model;

/* Build the graph and compile loss, metrics and optimizer from cfg. The
 * target width follows from the loss: 1 (a class index) for
 * sparse_categorical_crossentropy, the output width otherwise. */
ct_status ct_model_create(const ct_config *cfg, ct_model **out);
void ct_model_destroy(ct_model *m);

/* Check the data fits the model: input size and target width. `what`
 * names the set in messages ("training data"). */
ct_status ct_model_check_data(const ct_model *m, const ct_dataset *d, const char *what);
/* 1 when data samples of shape a fit an input of shape b: the same dims
 * up to axes of size 1, or flat (rank-1) data of the same size. */
int ct_model_same_shape(const ct_shape *a, const ct_shape *b);
ct_status ct_model_check_shapes(const ct_model *m, const ct_shape *x_shape, const ct_shape *y_shape,
                                int64_t num_classes, const char *what);

/* Change a layer's trainable flag between training phases (a frozen
 * encoder under a new head, then fine-tuning): frozen parameters get no
 * update and no allreduce and stay bit-identical. As Keras's recompile
 * after changing `trainable`, the optimizer starts afresh (its slots and
 * iteration count; the step counter of the run is kept) and the gradient
 * buckets are planned again. */
ct_status ct_model_set_trainable(ct_model *m, const char *layer, int on);

/* Train data-parallel over `comm`: each global batch is split across the
 * ranks, gradients are summed with `algo`, metrics and losses reduced as
 * (sum, count), validation sharded, non-trainable statistics (BatchNorm)
 * averaged before evaluation. Every rank must call fit/evaluate. */
ct_status ct_model_set_comm(ct_model *m, ct_comm *comm, ct_reduce_algo algo, int fp16, int64_t bucket_bytes);

/* Average non-trainable parameters (BatchNorm moving statistics) across
 * the ranks; a no-op on one rank. */
ct_status ct_model_sync_stats(ct_model *m);

/* The training step in parts, for custom loops (ct_model_train_step is
 * these four; gradient accumulation is several forward/loss/backward
 * rounds with accumulate = 1 after the first, then one apply):
 *   forward   x flat rows (batch x graph->input_size)
 *   loss      every output's loss from y (batch x y_size) and w (sample
 *             weights or NULL) into its dy, the gradient scaled by
 *             grad_scale (1/batch for a mean); *loss_sum gets sum_i w_i *
 *             sum_k weight_k loss_ik; updates the metrics
 *   backward  parameter gradients (added to the slab when accumulate),
 *             and dL/dx in graph->inputs[k].dx when input gradients are on
 *   apply     regularization gradients (*penalty), gradient allreduce on
 *             several ranks, one optimizer step
 * All plan-free after ct_model_plan; they allocate nothing. */
ct_status ct_model_plan(ct_model *m, int64_t batch_cap);
ct_status ct_model_forward(ct_model *m, const float *x, int64_t batch, int training);
ct_status ct_model_loss(ct_model *m, const float *y, const float *w, int64_t batch, float grad_scale,
                        double *loss_sum);
void ct_model_backward(ct_model *m, int64_t batch, int accumulate);
ct_status ct_model_apply(ct_model *m, double *penalty);

/* One training step on a batch (x: batch x input, y: batch x y_size, w:
 * sample weights or NULL). Updates the metrics' sums; returns the mean
 * loss including penalties in *loss. Allocates nothing. */
ct_status ct_model_train_step(ct_model *m, const float *x, const float *y, const float *w, int64_t batch,
                              double *loss);

/* A data-parallel step: every rank passes the same global batch of `batch`
 * rows and trains on its share. *loss is this rank's mean (plus penalty). */
ct_status ct_model_train_global(ct_model *m, const float *x, const float *y, int64_t batch, double *loss);

/* A data-parallel step on this rank's `rows` of a global batch of `global`
 * rows (its share, as a pipeline's batch stage hands it out). */
ct_status ct_model_train_local(ct_model *m, const float *x, const float *y, int64_t rows, int64_t global,
                               double *loss);

/* Train from m->state (epoch 0, batch 0 for a new model; where a
 * checkpoint left off after a resume) up to `epochs`, reading this rank's
 * batches from `train` (ct_pipeline_open with the model's batch size,
 * rank and world). The epoch's batches are a function of (seed, epoch),
 * so (epoch, batch) is the whole data cursor: resuming seeks to it. */
ct_status ct_model_fit_stream(ct_model *m, ct_stage *train, const ct_dataset *val, int epochs, int validation_freq,
                              const ct_fit_hooks *hooks);

/* fit on an in-memory data set: a pipeline with no workers or prefetch. */
ct_status ct_model_fit(ct_model *m, const ct_dataset *train, const ct_dataset *val, int epochs,
                       int validation_freq, int shuffle, const ct_fit_hooks *hooks);

/* Loss and metrics over a data set; names without prefix. */
ct_status ct_model_evaluate(ct_model *m, const ct_dataset *d, ct_logs *logs);

/* Outputs for n samples: out is n x pred_size (every output's values,
 * concatenated in output order). */
ct_status ct_model_predict(ct_model *m, const float *x, int64_t n, float *out);

#endif
