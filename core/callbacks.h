/* Keras's callbacks, configured by their config sections: EarlyStopping,
 * ModelCheckpoint, ReduceLROnPlateau, learning-rate schedules, CSVLogger,
 * TerminateOnNaN and TensorBoard. They plug into ct_model_fit through
 * ct_fit_hooks; in a distributed run only rank 0 runs them.
 *
 * Their state (best values, waits, cooldown, the learning rate) lives in
 * ct_callback_state so checkpoints can carry it and a resumed run makes
 * the same decisions the uninterrupted run would have made. */
#ifndef CT_CALLBACKS_H
#define CT_CALLBACKS_H

#include "config.h"
#include "inputs.h"
#include "model.h"

typedef struct ct_callback_state {
    double es_best;            /* EarlyStopping */
    int es_wait, es_best_epoch;
    double ckpt_best;          /* ModelCheckpoint */
    double plateau_best;       /* ReduceLROnPlateau */
    int plateau_wait, plateau_cooldown;
    double lr;                 /* the learning rate in force */
    double base_lr;            /* [train] learning_rate, before schedules */
    float *best_weights;       /* EarlyStopping's restore_best_weights copy (all n_values), or NULL */
} ct_callback_state;

typedef struct ct_callbacks ct_callbacks;

/* cfg, m and norm stay borrowed for the callbacks' lifetime (checkpoints
 * save them). verbose > 0 prints Keras's callback messages. */
ct_status ct_callbacks_create(const ct_config *cfg, ct_model *m, const ct_inputs *norm, int verbose,
                              ct_callbacks **out);
void ct_callbacks_destroy(ct_callbacks *c);

/* The hooks for ct_model_fit; `next` (the progress bar) runs first. */
ct_fit_hooks ct_callbacks_hooks(ct_callbacks *c, const ct_fit_hooks *next);

ct_callback_state *ct_callbacks_state(ct_callbacks *c);

/* Open the CSV log and TensorBoard files (append when resuming). */
ct_status ct_callbacks_open_files(ct_callbacks *c, int resuming);

/* Write the [model_checkpoint] file for where training stands now (the
 * resume point after a signal), whatever save_best_only says; its path
 * goes to `path` ("" and a warning on stderr when the config has no
 * [model_checkpoint]). */
ct_status ct_callbacks_save_now(ct_callbacks *c, char *path, size_t n);

/* Expand a ModelCheckpoint file template: {epoch:02d}, {batch}, {loss:.2f},
 * {val_accuracy:.4f}, ... (Python str.format for d, f, e, g and plain {name}).
 * CT_ERR_CONFIG names an unknown field or a bad format. */
ct_status ct_format_filepath(const char *tmpl, int epoch, int64_t batch, const ct_logs *logs, char *out, size_t n);

/* The newest complete checkpoint that the config's ModelCheckpoint wrote
 * (by its template), or "" when there is none. */
ct_status ct_find_latest_checkpoint(const ct_config *cfg, char *out, size_t n);

#endif
