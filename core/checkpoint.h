/* Model files (HDF5) in the Keras layout.
 *
 *   /                       attrs keras_version, backend, model_config (JSON),
 *                           ctrain_format (version), ctrain_config (packed
 *                           ctrain.Config, so the file alone rebuilds the model)
 *   /model_weights          attrs layer_names[], backend, keras_version
 *   /model_weights/<layer>  attrs weight_names[] ("<layer>/kernel:0", ...)
 *   /model_weights/<layer>/<layer>/kernel:0   float32 datasets
 *   /ctrain/normalization   rescale, feature mean and std (if standardised)
 *   /ctrain/state           optimizer step count
 *
 * Files are written to "<path>.tmp" and renamed, so a crash never leaves a
 * half-written file under the real name. Loading checks every name and
 * shape and says which one differs. */
#ifndef CT_CHECKPOINT_H
#define CT_CHECKPOINT_H

#include "config.h"
#include "inputs.h"
#include "model.h"

/* norm may be NULL (no normalisation stored). */
ct_status ct_checkpoint_save(const char *path, const ct_config *cfg, const ct_model *m, const ct_inputs *norm);

/* Rebuild config and model from a file; *norm receives rescale/mean/std
 * (its data sets stay empty). Errors are CT_ERR_CHECKPOINT naming the file
 * and the object. */
ct_status ct_checkpoint_load(const char *path, ct_config **cfg, ct_model **m, ct_inputs *norm);

/* Load only the weights of a file into an existing model (names and shapes
 * must match). */
ct_status ct_checkpoint_load_weights(const char *path, ct_model *m);

/* Writes every variable: name, shape, values, as text. */
ct_status ct_checkpoint_dump(const char *path, FILE *out);

/* 1 when the path looks like an HDF5 file (by signature). */
int ct_checkpoint_is_hdf5(const char *path);

#endif
