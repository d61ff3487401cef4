/* The model graph: named model inputs, layers applied at nodes of a DAG,
 * named outputs, the parameters in one store, and the buffers of one
 * training step planned once.
 *
 * Inputs. Either the [model] input = shape (one float32 input called
 * "input"), or the sections with type = input in file order, each with its
 * shape and dtype (float32, or int32: integer values carried exactly as
 * floats, |v| < 2^24). A batch reaches the graph either as flat rows, each
 * row all inputs' values concatenated in declared order (what the data
 * pipeline carries: g->input_size values a sample, input k at columns
 * [inputs[k].offset, + inputs[k].size)), or as one array per input.
 *
 * Nodes. One per layer section in file order (input sections make no
 * node); a section's `inputs` name earlier sections, so file order is a
 * topological order; without `inputs` a section takes the previous one.
 * A section with apply = L is another node of layer L (a shared layer:
 * one weight set; node->call counts its uses from 0, as Keras's node
 * index in inbound_nodes). In node->in[], k >= 0 is a node and
 * CT_INPUT_REF(k) (< 0) is model input k.
 *
 * Outputs. [model] outputs = a, b (node names, in order), else the last
 * node. Every node must lead to an output. Backward starts from every
 * output's dy, which the caller fills (the loss of that output, or zeros).
 *
 * Parameter store: all values in one slab, all gradients in a second slab
 * with the same offsets, in three ranges: trainable parameters of
 * trainable layers [0, n_trainable) (what optimizers, clipping and the
 * gradient allreduce see), then the parameters of frozen layers
 * [n_trainable, stats_lo) (never updated, never reduced), then the
 * non-trainable statistics of trainable layers [stats_lo, n_values)
 * (BatchNorm moving averages: averaged across ranks before evaluation). */
#ifndef CT_GRAPH_H
#define CT_GRAPH_H

#include <stdint.h>

#include "config.h"
#include "layer.h"
#include "optim.h"
#include "status.h"

#define CT_INPUT_NODE (-1)            /* model input 0 in node->in[] */
#define CT_INPUT_REF(k) (-1 - (k))    /* model input k in node->in[] */
#define CT_GRAPH_MAX_IO 32            /* most model inputs, and most outputs */

typedef enum ct_dtype { CT_FLOAT32 = 0, CT_INT32 = 1 } ct_dtype;

const char *ct_dtype_name(ct_dtype t);

typedef struct ct_graph_input {
    char name[CT_NAME_MAX];       /* "input" for the [model] input, else the section name */
    int line;                     /* config line of its section (0: [model] input) */
    ct_shape shape;               /* per sample */
    ct_dtype dtype;
    int64_t size;                 /* values per sample */
    int64_t offset;               /* column of its first value in a flat row of all inputs */
    const float *x;               /* the batch of the last forward: batch x size */
    float *split;                 /* planned: its columns copied out of flat rows (several inputs) */
    float *dx;                    /* dL/dx after backward when g->input_grads, else NULL */
} ct_graph_input;

typedef struct ct_node {
    ct_layer *layer;
    char name[CT_NAME_MAX];       /* the section's name (== layer->name for its first call) */
    int line;                     /* config line of the section */
    int call;                     /* which use of the layer this node is, from 0 */
    int out_index;                /* index in g->outputs, -1 when not an output */
    int n_in;
    int in[CT_LAYER_MAX_INPUTS];  /* node indices, CT_INPUT_REF(k) for model input k */
    int64_t out_size;             /* values per sample */
    int needs_grad;               /* backward must run here (trainable parameters, or input gradients, upstream) */
    int64_t param_lo;             /* lowest slab offset of its trainable parameters, -1 if none */
    int last_consumer;            /* highest node index reading it (itself for the output) */
    float *z, *y;                 /* pre-activation and output; y == z for linear */
    float *dy;                    /* dL/dy, turned into dL/dz in place; shared with nodes whose
                                     gradients are never live at the same time; NULL if unused */
    float *saved;
    int mask_from;                /* node whose mask buffer is this node's output mask, -1: none */
    float *mask;                  /* its own (batch, out_shape[0]) mask (CT_MASK_MAKE layers) */
} ct_node;

typedef struct ct_param_ref {
    int node, index;              /* nodes[node].layer->params[index] */
    char full_name[2 * 64 + 2];   /* "fc1/kernel" */
} ct_param_ref;

typedef struct ct_graph {
    int n_nodes;
    ct_node *nodes;
    int n_layers;                 /* distinct layers, in order of definition */
    ct_layer **layers;
    int n_inputs;
    ct_graph_input *inputs;
    int n_outputs;
    int outputs[CT_GRAPH_MAX_IO]; /* node indices */
    ct_shape input_shape;         /* input 0's (single-input code) */
    int64_t input_size;           /* values of all inputs per sample (a flat row) */
    int input_grads;              /* fill inputs[k].dx in backward (ct_graph_set_input_grads) */
    int accumulate;               /* backward adds to the gradient slab instead of clearing it first */
    /* parameter store */
    int n_params;
    ct_param_ref *params;
    int64_t n_values, n_trainable, stats_lo;
    float *values, *grads;
    int n_segments;               /* trainable parameters as slab ranges */
    ct_segment *segments;
    /* plan */
    int64_t batch_cap;
    float *arena;
    float *scratch;
    int64_t scratch_per_sample;
    const float *x;               /* input 0's batch of the last forward */
    int64_t row0;                 /* global row of x's first row (0 on one rank) */
    /* Called during backward once the gradients at [offset, n_trainable)
     * are final (gradient buckets start their allreduce then). */
    void (*grads_ready)(void *ctx, int64_t offset);
    void *grads_ready_ctx;
    int no_fusion;                /* inference: do not fold BatchNormalization into the conv before it */
} ct_graph;

/* Build from a validated config: create and init layers, infer shapes,
 * place parameters and initialise them from `seed`. Shape and config
 * errors name the layer (and the config line when known). */
ct_status ct_graph_build(const ct_config *cfg, uint64_t seed, ct_graph **out);
void ct_graph_destroy(ct_graph *g);

/* Size every activation, gradient and scratch buffer for batches up to
 * `batch_cap`. Afterwards forward/backward allocate nothing. */
ct_status ct_graph_plan(ct_graph *g, int64_t batch_cap);

/* Output 0 (the only one of a single-output model). */
static inline ct_node *ct_graph_output(ct_graph *g) { return &g->nodes[g->outputs[0]]; }
static inline ct_node *ct_graph_output_at(ct_graph *g, int k) { return &g->nodes[g->outputs[k]]; }
static inline int ct_graph_is_input_ref(int in) { return in < 0; }
static inline int ct_graph_input_index(int in) { return -1 - in; }

/* Lookup by name: model input index / node index, -1 when absent. */
int ct_graph_find_input(const ct_graph *g, const char *name);
int ct_graph_find_node(const ct_graph *g, const char *name);

/* Freeze (on = 0) or unfreeze a layer (all its calls): its parameters
 * move between the trainable and frozen ranges of the store (values kept,
 * offsets change) and backward skips what no longer needs gradients.
 * Plan again before the next forward. CT_ERR_USAGE for an unknown layer. */
ct_status ct_graph_set_trainable(ct_graph *g, const char *layer, int on);

/* Ask backward to compute dL/dx for every model input (inputs[k].dx), for
 * a GAN's generator or saliency maps. Call before ct_graph_plan. */
ct_status ct_graph_set_input_grads(ct_graph *g, int on);

/* x: flat rows, batch x input_size (several inputs are split into their
 * planned buffers). In a data-parallel step g->row0 says which row of the
 * global batch x's first row is, so random draws (dropout) match a
 * single-process run. */
void ct_graph_forward(ct_graph *g, const float *x, int64_t batch, int training, uint64_t step,
                      uint64_t seed);
/* xs[k]: model input k's batch, batch x inputs[k].size (kept, not copied). */
void ct_graph_forward_inputs(ct_graph *g, const float *const *xs, int64_t batch, int training, uint64_t step,
                             uint64_t seed);
/* Backward from every output's dy (filled by the caller: dL/dy, or zeros
 * for an output without a loss). Bit k of `output_dz` says output k's dy
 * holds dL/dz instead (activation fused into the loss; only for an output
 * no other node reads). The gradient slab is zeroed first; so are the
 * inputs' dx. Only nodes with needs_grad run. */
void ct_graph_backward(ct_graph *g, int64_t batch, int output_dz, uint64_t step, uint64_t seed);

/* The io of node i as forward/backward fill it (buffers of the last
 * forward; training, step and seed left 0), for profilers. */
void ct_graph_fill_io(ct_graph *g, int i, int64_t batch, ct_layer_io *io);

/* Add regularizer gradients; returns the penalty. */
double ct_graph_regularize(ct_graph *g);
/* The penalty alone (for evaluation). */
double ct_graph_penalty(const ct_graph *g);

/* Parameter lookup by "layer/param". */
const ct_layer_param *ct_graph_param(const ct_graph *g, int i);
int64_t ct_graph_count_params(const ct_graph *g, int trainable_only);
int64_t ct_layer_count_params(const ct_layer *l);

#endif
