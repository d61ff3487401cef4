/* What the convolution layers share (defined in conv2d.c): the window
 * keys (kernel_size, strides, padding, dilation_rate) and the output
 * geometry, with messages that name the layer. */
#ifndef CT_CONV_COMMON_H
#define CT_CONV_COMMON_H

#include "../layer.h"
#include "conv.h"

ct_status ct_conv_layer_window(const ct_layer *l, const ct_layer_config *c, ct_conv_window *w);
/* Keras JSON: kernel_size, strides, padding, data_format, dilation_rate. */
void ct_conv_layer_window_json(ct_json *j, const ct_conv_window *w);
ct_status ct_conv_layer_geom(const ct_layer *l, const ct_conv_window *w, int f, ct_conv2d_geom *g);

#endif
