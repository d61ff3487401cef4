/* The .conf reader: INI text in, a validated ctrain.Config message out.
 *
 * Sections map to sub-messages of ctrain.Config ([model] -> model,
 * [data] -> data, [augment] -> augment, [train] -> train); every other
 * section is a layer (LayerConfig, name = header) in file order. A key is
 * the name of a field of that message; values are parsed by the field's
 * type (int, float, bool, string, enum; repeated fields take
 * comma-separated lists). Errors carry "file:line: " and name the key;
 * unknown sections, keys, layer types and names in value tables
 * (activations, losses, ...) list what is allowed and suggest the nearest.
 * Path-valued keys resolve against the directory of the .conf file (and,
 * for --set overrides, against the current directory). */
#ifndef CT_CONFIG_H
#define CT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ctrain.pb-c.h"
#include "status.h"

/* In `inputs = ...`, this name is the model input; no layer may take it. */
#define CT_MODEL_INPUT_NAME "input"

typedef Ctrain__Config ct_config;
typedef Ctrain__LayerConfig ct_layer_config;

/* Read and validate `path`, then apply `overrides` ("section.key=value",
 * a section the file lacks is created). On success *out is owned by the
 * caller (ct_config_free). Returns CT_ERR_CONFIG or CT_ERR_IO otherwise. */
ct_status ct_config_load(const char *path, const char *const *overrides, int n_overrides,
                         ct_config **out);

/* Parse text held in memory. `name` is used in messages ("name:line: ");
 * `base_dir` resolves relative paths (NULL: leave them as written). */
ct_status ct_config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                          ct_config **out);

/* Apply one "section.key=value" override to a parsed config. */
ct_status ct_config_override(ct_config *cfg, const char *assignment);

/* Checks that only make sense on the whole file: unique layer names,
 * inputs that name earlier layers, keys the layer type accepts. Called by
 * load/parse and again after overrides. */
ct_status ct_config_validate(const ct_config *cfg);

void ct_config_free(ct_config *cfg);

/* 1 when [model] kind = boosted_trees (core/trees.h), 0 otherwise. */
int ct_config_is_trees(const ct_config *cfg);

/* Packed protobuf bytes (for broadcast and checkpoints). *buf is malloc'd. */
ct_status ct_config_pack(const ct_config *cfg, uint8_t **buf, size_t *len);
ct_status ct_config_unpack(const uint8_t *buf, size_t len, ct_config **out);

/* The value of a layer key as text: an extra entry, or a set LayerConfig
 * field rendered as the .conf writes it (numbers into buf, lists
 * comma-separated); NULL when the config does not set it. *line (may be
 * NULL) gets the key's line when known, else 0. */
const char *ct_config_layer_text(const ct_layer_config *c, const char *key, char *buf, size_t cap, int *line);

/* The .conf value syntax, for key tables: strict decimal integers and
 * reals (C locale), and booleans (true/false, yes/no, 1/0). */
ct_status ct_config_parse_int(const char *s, int64_t *out);
ct_status ct_config_parse_real(const char *s, double *out);
ct_status ct_config_parse_bool(const char *s, int *out);

/* An entry of a per-output [train] key (loss, loss_weights, metrics):
 * "value" applies to every output, "output: value" to one. Copies the
 * output name into name (empty for every output; cap bytes) and returns
 * the value, trimmed, in vbuf (vcap bytes). */
const char *ct_config_output_entry(const char *entry, char *name, size_t cap, char *vbuf, size_t vcap);

/* Nearest candidate by edit distance, or NULL when none is close. */
const char *ct_nearest_name(const char *word, const char *const *candidates, int n);

#endif
