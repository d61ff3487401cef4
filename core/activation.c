/* The activation name table. */
#include "activation.h"

#include <string.h>
#include <strings.h>

static const char *const act_names[CT_ACT_COUNT] = {
    [CT_ACT_LINEAR] = "linear",         [CT_ACT_RELU] = "relu",
    [CT_ACT_SIGMOID] = "sigmoid",       [CT_ACT_TANH] = "tanh",
    [CT_ACT_SOFTMAX] = "softmax",       [CT_ACT_ELU] = "elu",
    [CT_ACT_SELU] = "selu",             [CT_ACT_LEAKY_RELU] = "leaky_relu",
    [CT_ACT_GELU] = "gelu",             [CT_ACT_SWISH] = "swish",
    [CT_ACT_SOFTPLUS] = "softplus",     [CT_ACT_HARD_SIGMOID] = "hard_sigmoid",
};

int ct_activation_find(const char *name, ct_activation *out)
{
    if (!name) return 0;
    if (strcasecmp(name, "none") == 0 || name[0] == 0) {
        *out = CT_ACT_LINEAR;
        return 1;
    }
    if (strcmp(name, "silu") == 0) { /* Keras alias */
        *out = CT_ACT_SWISH;
        return 1;
    }
    for (int i = 0; i < CT_ACT_COUNT; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *out = (ct_activation)i;
            return 1;
        }
    return 0;
}

const char *ct_activation_name(ct_activation a)
{
    return (unsigned)a < CT_ACT_COUNT ? act_names[a] : "?";
}

const char *const *ct_activation_names(int *n)
{
    *n = CT_ACT_COUNT;
    return act_names;
}
