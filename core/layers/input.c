/* Input (Keras InputLayer): a named model input with its per-sample shape
 * and dtype, as Input(shape=..., dtype=..., name=...). The graph turns
 * these sections into model inputs (ct_graph_input) rather than nodes;
 * the type exists so the config reader knows its keys. int32 values
 * (token ids, category codes) travel as exact floats (|v| < 2^24, checked
 * where data enters) and only layers with int_inputs accept them. */
#include <math.h>

#include "../layer.h"

static const ct_layer_key input_keys[] = {
    {"shape", CT_KEY_INTS, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INFINITY, CT_MAX_DIMS, NULL,
     "per-sample shape, e.g. 28, 28, 1"},
    {"dtype", CT_KEY_STRING, "float32", 0, 0, 0, 0, ct_key_check_dtype, "float32 | int32"},
    {NULL},
};

static ct_status input_init(ct_layer *l, const ct_layer_config *c)
{
    (void)l;
    (void)c;
    return CT_OK;
}

static ct_status input_infer(ct_layer *l)
{
    return CT_FAIL(CT_ERR_RUNTIME, "input '%s': a model input is not a node of the graph", l->name);
}

static void input_pass(ct_layer *l, const ct_layer_io *io)
{
    (void)l;
    (void)io;
}

const ct_layer_type ct_layer_input = {
    .name = "input", .keras_class = "InputLayer", .keys = input_keys, .size = sizeof(ct_layer),
    .min_inputs = 0, .max_inputs = 0, .int_inputs = 1,
    .init = input_init, .infer = input_infer, .forward = input_pass, .backward = input_pass,
};
