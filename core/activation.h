/* Activation functions by name: the table that config validation, layers
 * and the graph share. Kernels live in ops/activation.c. */
#ifndef CT_ACTIVATION_H
#define CT_ACTIVATION_H

typedef enum ct_activation {
    CT_ACT_LINEAR = 0,
    CT_ACT_RELU,
    CT_ACT_SIGMOID,
    CT_ACT_TANH,
    CT_ACT_SOFTMAX,
    CT_ACT_ELU,
    CT_ACT_SELU,
    CT_ACT_LEAKY_RELU,
    CT_ACT_GELU,
    CT_ACT_SWISH,
    CT_ACT_SOFTPLUS,
    CT_ACT_HARD_SIGMOID,
    CT_ACT_COUNT
} ct_activation;

/* Returns 1 and sets *out when `name` is known ("relu", "None" = linear). */
int ct_activation_find(const char *name, ct_activation *out);
const char *ct_activation_name(ct_activation a);
/* The accepted names, in table order; *n receives the count. */
const char *const *ct_activation_names(int *n);

#endif
