/* Optimizers over the flat parameter slab, with Keras's (tf.keras 2.11
 * optimizer) update rules and default hyperparameters.
 *
 * Slots (momentum, Adam's m and v, ...) are slabs with the same offsets as
 * the parameters, so one loop updates everything and a checkpoint saves
 * the slots as flat ranges. Per-variable clipping (clipnorm) needs the
 * variable boundaries: they come as segments. */
#ifndef CT_OPTIM_H
#define CT_OPTIM_H

#include <stdint.h>

#include "status.h"

typedef enum ct_optim_kind {
    CT_OPT_SGD = 0,
    CT_OPT_ADAM,
    CT_OPT_ADAMW,
    CT_OPT_RMSPROP,
    CT_OPT_ADAGRAD,
    CT_OPT_COUNT
} ct_optim_kind;

typedef struct ct_optim_config {
    ct_optim_kind kind;
    double learning_rate;   /* Keras defaults: sgd 0.01, others 0.001 */
    double momentum;        /* sgd, rmsprop: 0 */
    int nesterov;           /* sgd */
    double beta_1, beta_2;  /* adam(w): 0.9, 0.999 */
    double epsilon;         /* 1e-7 */
    int amsgrad;            /* adam(w) */
    double weight_decay;    /* adamw: 0.004 (decoupled, lr * wd * w) */
    double rho;             /* rmsprop: 0.9 */
    int centered;           /* rmsprop */
    double initial_accumulator_value; /* adagrad: 0.1 */
    double clipnorm;        /* > 0: clip each variable's gradient to this L2 norm */
    double clipvalue;       /* > 0: clip each gradient element to [-v, v] */
    double global_clipnorm; /* > 0: clip the whole gradient to this L2 norm */
} ct_optim_config;

/* A variable: a range [offset, offset + size) of the slab. */
typedef struct ct_segment {
    int64_t offset, size;
} ct_segment;

typedef struct ct_optimizer {
    ct_optim_config cfg;
    int64_t n;              /* parameters in the slab */
    int n_slots;            /* slabs of n floats in `slots` */
    float *slots;           /* n_slots * n, zero (or initial value) at start */
    int64_t iterations;     /* steps taken (Keras `iterations`) */
} ct_optimizer;

/* Fill `cfg` with the Keras defaults for `name` ("sgd", "adam", "adamw",
 * "rmsprop", "adagrad"); CT_ERR_CONFIG lists the known names. */
ct_status ct_optim_defaults(const char *name, ct_optim_config *cfg);
const char *const *ct_optim_names(int *n);

ct_status ct_optimizer_create(const ct_optim_config *cfg, int64_t n, ct_optimizer **out);
void ct_optimizer_destroy(ct_optimizer *opt);

/* One update of w (n values) from gradient g at learning rate lr. The
 * gradient may be modified in place by clipping. Allocates nothing. */
void ct_optimizer_step(ct_optimizer *opt, float *w, float *g, const ct_segment *segs, int n_segs,
                       double lr);

/* Slot names for checkpoints ("momentum", "m", "v", "vhat", ...). */
const char *ct_optimizer_slot_name(const ct_optimizer *opt, int slot);

#endif
