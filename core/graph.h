/* The model graph: named layers as a DAG, their parameters in one store,
 * and the buffers of one training step planned once.
 *
 * Nodes are kept in file order; a layer's `inputs` must name earlier
 * layers (or "input", the model input), so file order is a topological
 * order. The last layer is the output. Without `inputs`, a layer takes the
 * previous one (a Sequential stack).
 *
 * Parameter store: all values in one slab, all gradients in a second slab
 * with the same offsets; trainable parameters first, so optimizers and the
 * gradient allreduce work on [0, n_trainable). */
#ifndef CT_GRAPH_H
#define CT_GRAPH_H

#include <stdint.h>

#include "config.h"
#include "layer.h"
#include "optim.h"
#include "status.h"

#define CT_INPUT_NODE (-1)

typedef struct ct_node {
    ct_layer *layer;
    int n_in;
    int in[CT_LAYER_MAX_INPUTS];  /* node indices, CT_INPUT_NODE for the model input */
    int64_t out_size;             /* values per sample */
    int needs_grad;               /* some parameter upstream wants gradients */
    int64_t param_lo;             /* lowest slab offset of its trainable parameters, -1 if none */
    int last_consumer;            /* highest node index reading it (itself for the output) */
    float *z, *y;                 /* pre-activation and output; y == z for linear */
    float *dy;                    /* dL/dy, turned into dL/dz in place; shared with nodes whose
                                     gradients are never live at the same time; NULL if unused */
    float *saved;
} ct_node;

typedef struct ct_param_ref {
    int node, index;              /* nodes[node].layer->params[index] */
    char full_name[2 * 64 + 2];   /* "fc1/kernel" */
} ct_param_ref;

typedef struct ct_graph {
    int n_nodes;
    ct_node *nodes;
    ct_shape input_shape;
    int64_t input_size;
    /* parameter store */
    int n_params;
    ct_param_ref *params;
    int64_t n_values, n_trainable;
    float *values, *grads;
    int n_segments;               /* trainable parameters as slab ranges */
    ct_segment *segments;
    /* plan */
    int64_t batch_cap;
    float *arena;
    float *scratch;
    int64_t scratch_per_sample;
    const float *x;               /* the batch of the last forward */
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

static inline ct_node *ct_graph_output(ct_graph *g) { return &g->nodes[g->n_nodes - 1]; }

/* x: batch x input_size. In a data-parallel step g->row0 says which row
 * of the global batch x's first row is, so random draws (dropout) match
 * a single-process run. */
void ct_graph_forward(ct_graph *g, const float *x, int64_t batch, int training, uint64_t step,
                      uint64_t seed);
/* Backward from the output's dy (filled by the caller). With
 * `output_dz` the caller wrote dL/dz (activation fused into the loss). The
 * gradient slab is zeroed first. */
void ct_graph_backward(ct_graph *g, int64_t batch, int output_dz, uint64_t step, uint64_t seed);

/* Add regularizer gradients; returns the penalty. */
double ct_graph_regularize(ct_graph *g);
/* The penalty alone (for evaluation). */
double ct_graph_penalty(const ct_graph *g);

/* Parameter lookup by "layer/param". */
const ct_layer_param *ct_graph_param(const ct_graph *g, int i);
int64_t ct_graph_count_params(const ct_graph *g, int trainable_only);
int64_t ct_layer_count_params(const ct_layer *l);

#endif
