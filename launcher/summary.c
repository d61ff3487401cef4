/* model.summary() in the tf.keras 2.11 layout: 65 columns for a stack,
 * 98 with a "Connected to" column for graphs. */
#include <stdio.h>
#include <string.h>

#include "launcher.h"

static void row(const char *const *cells, const int *stops, int n)
{
    char line[256];
    int k = 0;
    for (int i = 0; i < n; i++) {
        int start = i ? stops[i - 1] : 0;
        k = start;
        int w = snprintf(line + k, sizeof line - (size_t)k, "%s", cells[i]);
        k += w;
        if (k > stops[i] - (i + 1 < n ? 1 : 0) && i + 1 < n) k = stops[i] - 1, line[k++] = ' ';
        while (k < stops[i]) line[k++] = ' ';
        line[k] = 0;
    }
    printf("%s\n", line);
}

static void rule(char c, int w)
{
    for (int i = 0; i < w; i++) putchar(c);
    putchar('\n');
}

static void commas(char *buf, size_t n, long long v)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", v);
    size_t len = strlen(raw), k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = 0;
}

void ct_print_summary(const ct_graph *g, const char *model_name, int functional)
{
    static const int seq_stops[] = {29, 55, 65}, fn_stops[] = {32, 53, 65, 98};
    const int *stops = functional ? fn_stops : seq_stops;
    int ncol = functional ? 4 : 3, width = stops[ncol - 1];
    printf("Model: \"%s\"\n", model_name);
    rule('_', width);
    const char *head[] = {" Layer (type)", "Output Shape", "Param #", "Connected to"};
    row(head, stops, ncol);
    rule('=', width);
    char name[160], shape[96], params[32], conn[160];
    const char *cells[4] = {name, shape, params, conn};
    if (functional)
        for (int k = 0; k < g->n_inputs; k++) {
            snprintf(name, sizeof name, " %s (InputLayer)", g->inputs[k].name);
            char s[80];
            ct_shape_str(&g->inputs[k].shape, 1, s, sizeof s);
            snprintf(shape, sizeof shape, "[%s]", s);
            snprintf(params, sizeof params, "0");
            snprintf(conn, sizeof conn, "[]");
            row(cells, stops, ncol);
            printf("%*s\n", width, "");
        }
    /* One row per layer; a shared layer's row connects every call (Keras
     * names a call's output layer[node_index][0]). */
    for (int i = 0; i < g->n_nodes; i++) {
        const ct_node *n = &g->nodes[i];
        if (n->call != 0) continue;
        snprintf(name, sizeof name, " %s (%s)", n->layer->name, n->layer->type->keras_class);
        ct_shape_str(&n->layer->out_shape, 1, shape, sizeof shape);
        snprintf(params, sizeof params, "%lld", (long long)ct_layer_count_params(n->layer));
        conn[0] = '[';
        conn[1] = 0;
        int first = 1;
        for (int j = i; j < g->n_nodes; j++) {
            const ct_node *c = &g->nodes[j];
            if (c->layer != n->layer) continue;
            for (int k = 0; k < c->n_in; k++) {
                int src = c->in[k];
                if (src < 0)
                    snprintf(conn + strlen(conn), sizeof conn - strlen(conn), "%s'%s[0][0]'", first ? "" : ", ",
                             g->inputs[ct_graph_input_index(src)].name);
                else
                    snprintf(conn + strlen(conn), sizeof conn - strlen(conn), "%s'%s[%d][0]'", first ? "" : ", ",
                             g->nodes[src].layer->name, g->nodes[src].call);
                first = 0;
            }
        }
        snprintf(conn + strlen(conn), sizeof conn - strlen(conn), "]");
        row(cells, stops, ncol);
        printf("%*s\n", width, "");
    }
    rule('=', width);
    char total[32], train[32], non[32];
    long long all = ct_graph_count_params(g, 0), tr = ct_graph_count_params(g, 1);
    commas(total, sizeof total, all);
    commas(train, sizeof train, tr);
    commas(non, sizeof non, all - tr);
    printf("Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", total, train, non);
    rule('_', width);
}
