/* Model files (HDF5) in the Keras layout.
 *
 *   /                       attrs keras_version, backend, model_config (JSON),
 *                           ctrain_format (version), ctrain_config (packed
 *                           ctrain.Config, so the file alone rebuilds the model)
 *   /model_weights          attrs layer_names[], backend, keras_version
 *   /model_weights/<layer>  attrs weight_names[] ("<layer>/kernel:0", ...)
 *   /model_weights/<layer>/<layer>/kernel:0   float32 datasets
 *   /ctrain                 attrs format_version, step, rescale, training state
 *                           (epoch, batch, loss_sum, seen), callback state;
 *                           datasets config (packed ctrain.Config),
 *                           feature_mean/feature_std (if standardised),
 *                           optimizer/<slot> (flat slabs), metrics (sum, count),
 *                           es_best_weights (EarlyStopping's restore copy, if any)
 *
 * Files are written to "<path>.tmp" and renamed, so a crash never leaves a
 * half-written file under the real name. Loading checks every name and
 * shape and says which one differs. */
#ifndef CT_CHECKPOINT_H
#define CT_CHECKPOINT_H

#include "config.h"
#include "inputs.h"
#include "model.h"

#include "callbacks.h"

/* norm and cb may be NULL. weights_only writes Keras's save_weights
 * layout (layer groups at the root, no config, no optimizer state). */
ct_status ct_checkpoint_save(const char *path, const ct_config *cfg, const ct_model *m, const ct_inputs *norm,
                             const ct_callback_state *cb, int weights_only);

/* Continue a run: weights, optimizer slots, counters, the data cursor and
 * the callback state of `path` into a model built from the same config.
 * A weights-only file restores the weights alone. */
ct_status ct_checkpoint_resume(const char *path, ct_model *m, ct_callback_state *cb);

/* Training position stored in a file: (epoch, batch, step); 0 when absent. */
ct_status ct_checkpoint_position(const char *path, int64_t *epoch, int64_t *batch, int64_t *step);

/* Rebuild config and model from a file; *norm receives rescale/mean/std
 * (its data sets stay empty). Errors are CT_ERR_CHECKPOINT naming the file
 * and the object. */
ct_status ct_checkpoint_load(const char *path, ct_config **cfg, ct_model **m, ct_inputs *norm);

/* Load only the weights of a file into an existing model (names and shapes
 * must match). */
ct_status ct_checkpoint_load_weights(const char *path, ct_model *m);

/* Writes every variable: name, shape, values, as text. */
ct_status ct_checkpoint_dump(const char *path, FILE *out);

/* CT_ERR_RUNTIME naming the first NaN or infinite weight ("what: the
 * weight dense/kernel holds NaN"); ct_checkpoint_save refuses such a
 * model, so that it never replaces a finite one. */
ct_status ct_model_check_finite(const ct_model *m, const char *what);

/* HDF5 files built in memory (the core driver, no backing store) and
 * written whole by ct_write_file_atomic, so that a full disk is a failed
 * write with its errno and the old file stays: create, write into it,
 * then ct_hdf5_memory_image (which closes it) gives the bytes to write.
 * Callers hold ct_hdf5_lock around both. `path` names messages. */
#include <hdf5.h>
hid_t ct_hdf5_memory_create(const char *path);
ct_status ct_hdf5_memory_image(hid_t f, const char *path, void **image, size_t *len);
/* A dataset-creation property list with the Fletcher32 filter (chunked;
 * none for empty or scalar data); close it with H5Pclose. */
hid_t ct_hdf5_checksummed(int rank, const hsize_t *dims, size_t elem);
/* The error of a failed H5Dread of `name`: a checksum mismatch when the
 * dataset has the Fletcher32 filter, else truncated or damaged. */
ct_status ct_hdf5_read_failure(hid_t d, const char *file, const char *name);

/* 1 when the path looks like an HDF5 file (by signature). */
int ct_checkpoint_is_hdf5(const char *path);

#endif
