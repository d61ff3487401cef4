/* TensorFlow.js model files: export a built graph as a layers model or a
 * graph model, and import a layers model (model.json + shards) back.
 *
 * Layers model (tensorflowjs_converter --output_format tfjs_layers_model):
 *   model.json  {"format": "layers-model", "generatedBy", "convertedBy",
 *               "modelTopology": {"keras_version", "backend",
 *               "model_config": <Keras JSON>}, "weightsManifest": [{"paths":
 *               [...], "weights": [{"name": "layer/param", "shape", "dtype",
 *               "quantization"?}]}]}
 *   group1-shardKofN.bin  the weights' bytes concatenated in manifest
 *               order and cut every shard_bytes (a weight may straddle two
 *               shards; no padding).
 * Graph model (--output_format tfjs_graph_model): modelTopology is a
 * GraphDef in JSON (Placeholder, Const, Conv2D, MatMul, BiasAdd, ...),
 * every weight a Const node whose value is the manifest entry of the same
 * name; a BatchNormalization right after a Conv2D / DepthwiseConv2D /
 * Dense is folded into that layer's kernel and bias.
 *
 * Quantization (the converter's quantization.py rule): uint8 / uint16 are
 * affine, q = round_half_even((clip(x, min, max') - min) / scale) with
 * scale = (max - min) / 255 or 65535 and, when min <= 0 <= max, min nudged
 * to -round(-min / scale) * scale so that 0 is exact; a constant tensor
 * gets q = 0, scale 1, min = its value. float16 is IEEE binary16, round to
 * nearest even. Only float32 weights are quantized; int32 constants of a
 * graph model (shapes, axes) never are. */
#ifndef CT_TFJS_H
#define CT_TFJS_H

#include <stdint.h>

#include "config.h"
#include "graph.h"
#include "model.h"
#include "status.h"

typedef enum ct_tfjs_quant {
    CT_TFJS_FLOAT32 = 0, /* no quantization */
    CT_TFJS_UINT8,
    CT_TFJS_UINT16,
    CT_TFJS_FLOAT16
} ct_tfjs_quant;

#define CT_TFJS_MAX_PATTERNS 64
#define CT_TFJS_DEFAULT_SHARD (4 * 1024 * 1024)

typedef struct ct_tfjs_options {
    const char *output_dir;     /* created if missing */
    int graph_model;            /* 0 layers model, 1 graph model */
    int64_t shard_bytes;        /* default CT_TFJS_DEFAULT_SHARD */
    ct_tfjs_quant quant;
    /* Weight names or fnmatch patterns ("conv*\/kernel") to quantize; none
     * given: every float32 weight. */
    const char *quant_names[CT_TFJS_MAX_PATTERNS];
    int n_quant_names;
    /* filled by ct_tfjs_export */
    int n_shards_written;
    int64_t weight_bytes_written;
} ct_tfjs_options;

void ct_tfjs_options_init(ct_tfjs_options *o);
/* "uint8", "uint16", "float16" (also "float32": none). */
ct_status ct_tfjs_quant_parse(const char *s, ct_tfjs_quant *q);

/* Write DIR/model.json and DIR/group1-shard*of*.bin for graph g. A layer
 * or activation TF.js cannot run is refused (CT_ERR_USAGE) with its name
 * before anything is written; model.json is written last, under a
 * temporary name and renamed. A quantize pattern that matches no weight
 * is an error too. */
ct_status ct_tfjs_export(const ct_graph *g, const char *model_name, ct_tfjs_options *o);

/* Read a TF.js layers model (model.json written by the converter, by
 * ctrain or by tfjs's model.save) with its shards, quantized or not, into
 * a ctrain config and a built model holding those weights. `overrides`
 * ("section.key=value") are applied to the config made from the topology
 * (e.g. data.* and train.* for evaluation and fine-tuning). Errors name
 * model.json, the layer and the key, or the shard and its size.
 * conf_text (may be NULL) receives the .conf text made from the topology
 * (before overrides; caller frees). */
ct_status ct_tfjs_import(const char *model_json, const char *const *overrides, int n_overrides, ct_config **cfg,
                         ct_model **m, char **conf_text);

/* The affine rule above on n floats; out is uint8_t[n] (bits16 = 0) or
 * uint16_t[n] (bits16 = 1). */
void ct_tfjs_quantize_affine(const float *x, int64_t n, int bits16, void *out, double *min, double *scale);

#endif
