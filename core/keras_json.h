/* The model's architecture as Keras JSON (model.to_json(), the
 * `model_config` attribute of a Keras .h5, TF.js's modelTopology).
 *
 * A graph whose layers each take the one before, from the single model
 * input, is written as `Sequential` (an InputLayer first, as Keras 2.11
 * writes it); anything else as `Functional` with `inbound_nodes`,
 * `input_layers` and `output_layers`. A layer applied at several places
 * (several graph nodes sharing one ct_layer) is written once with one
 * inbound node per use; references name the node index of the producing
 * layer, as Keras's do.
 *
 * Each layer's own keys come from its type's `keras_config` hook
 * (core/layer.h); the helpers below write the pieces layers share, in the
 * spelling both tf.keras and tfjs-layers read:
 *   initializers  {"class_name": "GlorotUniform", "config": {"seed": null}};
 *                 lecun_* as the VarianceScaling they are (tfjs spells the
 *                 class LeCunNormal, Keras LecunNormal: VarianceScaling is
 *                 read by both)
 *   regularizers  {"class_name": "L1L2", "config": {"l1": .., "l2": ..}}
 *                 (tfjs registers only L1L2), null when absent
 *   constraints   null (ctrain has none) */
#ifndef CT_KERAS_JSON_H
#define CT_KERAS_JSON_H

#include "graph.h"
#include "json.h"
#include "layer.h"

/* Write {"class_name": ..., "config": {...}} for the graph. `model_name`
 * is the model's name (NULL: Keras's default, "sequential" or "model"). With `with_version` the object also carries
 * keras_version and backend, as model.to_json() writes them. */
ct_status ct_keras_model_json(const ct_graph *g, const char *model_name, int with_version, ct_json *j);

/* The same as one malloc'd string (*out, caller frees). */
ct_status ct_keras_model_json_string(const ct_graph *g, const char *model_name, int with_version, int pretty,
                                     char **out);

/* Shared pieces for keras_config hooks. */
void ct_keras_initializer(ct_json *j, const char *key, const ct_initializer *init);
void ct_keras_regularizer(ct_json *j, const char *key, const ct_regularizer *r);
void ct_keras_pair(ct_json *j, const char *key, int a, int b);
/* activation, use_bias, kernel_/bias_initializer, kernel_/bias_regularizer,
 * activity_regularizer, kernel_/bias_constraint (as Dense and Conv2D). */
void ct_keras_kernel_bias(ct_json *j, const ct_layer *l, const ct_kernel_bias *kb, int use_bias);
/* The channel axis of the layer's input counted with the batch axis
 * (Keras's positive axis for BatchNormalization). */
int ct_keras_last_axis(const ct_layer *l);

#endif
