/* Shared by core/tfjs.c (files, weights, layers models, import) and
 * core/tfjs_graph.c (the GraphDef lowering): the tensors that go into the
 * weight shards. */
#ifndef CT_TFJS_INTERNAL_H
#define CT_TFJS_INTERNAL_H

#include "graph.h"
#include "json.h"
#include "tfjs.h"

typedef struct ct_tfjs_tensor {
    char name[2 * CT_NAME_MAX + 32];
    ct_shape shape;
    int is_int;        /* int32 values (graph-model shapes and axes) */
    const float *f;    /* float32 values (borrowed or `owned`) */
    void *owned;       /* freed with the list */
} ct_tfjs_tensor;

typedef struct ct_tfjs_tensors {
    int n, cap;
    ct_tfjs_tensor *t;
} ct_tfjs_tensors;

/* Append a tensor; `owned` (malloc'd, may be NULL) passes to the list.
 * Returns the entry or NULL when out of memory (owned is freed then). */
ct_tfjs_tensor *ct_tfjs_tensors_add(ct_tfjs_tensors *l, const char *name, ct_shape shape, const float *f,
                                    void *owned);
ct_tfjs_tensor *ct_tfjs_tensors_add_ints(ct_tfjs_tensors *l, const char *name, const int64_t *v, int n, int as_vector);
void ct_tfjs_tensors_free(ct_tfjs_tensors *l);

/* The graph model: GraphDef nodes into j (an open array) and their Const
 * values into w. Refuses (CT_ERR_USAGE) what it cannot lower, naming the
 * layer. */
ct_status ct_tfjs_graph_lower(const ct_graph *g, ct_json *j, ct_tfjs_tensors *w);
/* The name of the graph model's output node (for the caller's messages). */

#endif
