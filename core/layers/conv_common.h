/* What the convolution layers share (defined in conv2d.c): the window
 * keys (kernel_size, strides, padding, dilation_rate) and the output
 * geometry, with messages that name the layer. */
#ifndef CT_CONV_COMMON_H
#define CT_CONV_COMMON_H

#include <math.h>

#include "../layer.h"
#include "conv.h"

ct_status ct_conv_layer_window(const ct_layer *l, const ct_layer_config *c, ct_conv_window *w);
/* The key-table entries of the window keys. */
#define CT_KEYS_CONV_WINDOW                                                                                     \
    {"kernel_size", CT_KEY_INTS, NULL, CT_KEY_REQUIRED | CT_KEY_RANGE, 1, INFINITY, 2, NULL,                     \
     "window: one value (square) or height, width"},                                                           \
        {"strides", CT_KEY_INTS, "1", CT_KEY_RANGE, 1, INFINITY, 2, NULL, "one or two values"},                 \
        {"padding", CT_KEY_STRING, "valid", 0, 0, 0, 0, ct_key_check_padding, "valid | same"},                  \
        {"dilation_rate", CT_KEY_INTS, "1", CT_KEY_RANGE, 1, INFINITY, 2, NULL, "one or two values"}
/* Keras JSON: kernel_size, strides, padding, data_format, dilation_rate. */
void ct_conv_layer_window_json(ct_json *j, const ct_conv_window *w);
ct_status ct_conv_layer_geom(const ct_layer *l, const ct_conv_window *w, int f, ct_conv2d_geom *g);

#endif
