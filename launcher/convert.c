/* The converter commands: export-json (the architecture as Keras JSON,
 * Keras's model.to_json()), export (TensorFlow.js layers and graph
 * models) and import (a TensorFlow.js layers model into a ctrain .h5).
 * They run in one process and parse their own options. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "inputs.h"
#include "keras_json.h"
#include "launcher.h"
#include "model.h"
#include "tfjs.h"

int ct_convert_is_command(const char *cmd)
{
    return strcmp(cmd, "export-json") == 0 || strcmp(cmd, "export") == 0 || strcmp(cmd, "import") == 0 ||
           strcmp(cmd, "serve") == 0;
}

/* A model from a .h5 written by ctrain, or freshly built from a .conf. */
static ct_status load_model(const char *path, ct_config **cfg, ct_model **m)
{
    *cfg = NULL;
    *m = NULL;
    if (ct_checkpoint_is_hdf5(path)) return ct_checkpoint_load(path, cfg, m, NULL);
    CT_TRY(ct_config_load(path, NULL, 0, cfg));
    ct_status s = ct_config_is_trees(*cfg) ? CT_FAIL(CT_ERR_USAGE, "%s: boosted trees have no Keras architecture "
                                                     "(see ctrain summary or dump-trees)", path)
                                           : ct_model_create(*cfg, m);
    if (s != CT_OK) {
        ct_config_free(*cfg);
        *cfg = NULL;
    }
    return s;
}

static ct_status export_json(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-')
        return CT_FAIL(CT_ERR_USAGE, "usage: ctrain export-json MODEL.h5|CONF (prints the model's Keras JSON)");
    ct_config *cfg;
    ct_model *m;
    CT_TRY(load_model(argv[2], &cfg, &m));
    char *json = NULL;
    ct_status s = ct_keras_model_json_string(m->graph, cfg->model ? cfg->model->name : NULL, 1, 0, &json);
    if (s == CT_OK && (fputs(json, stdout) < 0 || fputc('\n', stdout) < 0 || fflush(stdout) != 0))
        s = CT_FAIL(CT_ERR_IO, "standard output: cannot write: %s", strerror(errno));
    free(json);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* Option value after argv[*i]; NULL when missing. */
static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static ct_status export_tfjs(int argc, char **argv)
{
    ct_tfjs_options o;
    ct_tfjs_options_init(&o);
    const char *target = NULL, *format = "tfjs_layers_model";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--format") == 0) {
            if (!(format = option_value(argc, argv, &i)))
                return CT_FAIL(CT_ERR_USAGE, "--format needs tfjs_layers_model or tfjs_graph_model");
        } else if (strcmp(a, "--output") == 0) {
            if (!(o.output_dir = option_value(argc, argv, &i))) return CT_FAIL(CT_ERR_USAGE, "--output needs a directory");
        } else if (strcmp(a, "--weight-shard-size-bytes") == 0) {
            v = option_value(argc, argv, &i);
            char *end;
            long long n = v ? strtoll(v, &end, 10) : 0;
            if (!v || *end || end == v || n < 1)
                return CT_FAIL(CT_ERR_USAGE, "--weight-shard-size-bytes needs a byte count >= 1, got '%s'", v ? v : "");
            o.shard_bytes = n;
        } else if (strcmp(a, "--quantize") == 0) {
            v = option_value(argc, argv, &i);
            if (!v || ct_tfjs_quant_parse(v, &o.quant) != CT_OK)
                return CT_FAIL(CT_ERR_USAGE, "--quantize needs uint8, uint16 or float16, got '%s'", v ? v : "");
            /* Weight names (patterns with '*') up to the next option. */
            while (i + 1 < argc && argv[i + 1][0] != '-' && o.n_quant_names < CT_TFJS_MAX_PATTERNS)
                o.quant_names[o.n_quant_names++] = argv[++i];
        } else if (a[0] == '-') {
            return CT_FAIL(CT_ERR_USAGE, "export: unknown option '%s' (--format, --output, --weight-shard-size-bytes, --quantize)", a);
        } else if (!target) {
            target = a;
        } else {
            return CT_FAIL(CT_ERR_USAGE, "export: unexpected argument '%s'", a);
        }
    }
    if (!target) return CT_FAIL(CT_ERR_USAGE, "usage: ctrain export MODEL.h5 --format tfjs_layers_model|tfjs_graph_model --output DIR");
    if (!o.output_dir) return CT_FAIL(CT_ERR_USAGE, "export needs --output DIR");
    if (strcmp(format, "tfjs_layers_model") == 0) o.graph_model = 0;
    else if (strcmp(format, "tfjs_graph_model") == 0) o.graph_model = 1;
    else return CT_FAIL(CT_ERR_USAGE, "--format must be tfjs_layers_model or tfjs_graph_model, got '%s'", format);
    ct_config *cfg;
    ct_model *m;
    CT_TRY(load_model(target, &cfg, &m));
    ct_status s = ct_tfjs_export(m->graph, cfg->model ? cfg->model->name : NULL, &o);
    if (s == CT_OK) printf("export: wrote %s/model.json and %d weight shard%s (%lld bytes of weights)\n", o.output_dir,
                           o.n_shards_written, o.n_shards_written == 1 ? "" : "s", (long long)o.weight_bytes_written);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* An override "section.key=value" split at the first '.' and '='. */
static int split_override(const char *o, char *sec, size_t ns, char *key, size_t nk, const char **val)
{
    const char *dot = strchr(o, '.'), *eq = strchr(o, '=');
    if (!dot || !eq || eq < dot || (size_t)(dot - o) >= ns || (size_t)(eq - dot - 1) >= nk) return 0;
    snprintf(sec, ns, "%.*s", (int)(dot - o), o);
    snprintf(key, nk, "%.*s", (int)(eq - dot - 1), dot + 1);
    *val = eq + 1;
    return 1;
}

/* Is line "key = ..." for a key some override of section `sec` sets? */
static int overridden(const char *line, const char *sec, const char *const *ov, int n)
{
    for (int i = 0; i < n; i++) {
        char s[64], k[64];
        const char *v;
        if (!split_override(ov[i], s, sizeof s, k, sizeof k, &v) || strcmp(s, sec) != 0) continue;
        size_t kl = strlen(k);
        if (strncmp(line, k, kl) == 0 && (line[kl] == ' ' || line[kl] == '=')) return 1;
    }
    return 0;
}

static int put_section_overrides(FILE *f, const char *sec, const char *const *ov, int n)
{
    int ok = 1;
    for (int i = 0; i < n; i++) {
        char s[64], k[64];
        const char *v;
        if (split_override(ov[i], s, sizeof s, k, sizeof k, &v) && strcmp(s, sec) == 0)
            ok = ok && fprintf(f, "%s = %s\n", k, v) > 0;
    }
    return ok;
}

/* The config made from the topology, with the --set overrides merged in
 * and [model] weights = the imported file, for fine-tuning with `ctrain
 * train CONF`. */
static ct_status write_conf(const char *path, const char *text, const char *weights, const char *const *ov, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return CT_FAIL(CT_ERR_IO, "%s: cannot open for writing", path);
    int ok = fprintf(f, "# made by ctrain import; starts from the weights of %s\n", weights) > 0;
    char sec[64] = "", seen[64][64];
    int n_seen = 0;
    for (const char *line = text; ok && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (line[0] == '[' && len > 2 && len < sizeof sec + 1) {
            snprintf(sec, sizeof sec, "%.*s", (int)len - 2, line + 1);
            if (n_seen < 64) snprintf(seen[n_seen++], sizeof seen[0], "%s", sec);
            ok = fprintf(f, "%.*s\n", (int)len, line) > 0 && put_section_overrides(f, sec, ov, n);
            if (ok && strcmp(sec, "model") == 0) ok = fprintf(f, "weights = %s\n", weights) > 0;
        } else if (!overridden(line, sec, ov, n)) {
            ok = fprintf(f, "%.*s\n", (int)len, line) > 0;
        }
        line += len + (end ? 1 : 0);
    }
    for (int i = 0; ok && i < n; i++) { /* sections the topology has none of: [data], [augment], ... */
        char s[64], k[64];
        const char *v;
        int known = 0, first = 1;
        if (!split_override(ov[i], s, sizeof s, k, sizeof k, &v)) continue;
        for (int j = 0; j < n_seen; j++) known |= strcmp(seen[j], s) == 0;
        for (int j = 0; j < i; j++) {
            char s2[64], k2[64];
            const char *v2;
            if (split_override(ov[j], s2, sizeof s2, k2, sizeof k2, &v2) && strcmp(s2, s) == 0) first = 0;
        }
        if (!known && first) ok = fprintf(f, "\n[%s]\n", s) > 0 && put_section_overrides(f, s, ov, n);
    }
    ok = fclose(f) == 0 && ok;
    return ok ? CT_OK : CT_FAIL(CT_ERR_IO, "%s: write failed", path);
}

static ct_status import_tfjs(int argc, char **argv)
{
    const char *target = NULL, *output = NULL, *conf_out = NULL;
    const char *overrides[64];
    int n_overrides = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--output") == 0) {
            if (!(output = option_value(argc, argv, &i))) return CT_FAIL(CT_ERR_USAGE, "--output needs a file name");
        } else if (strcmp(argv[i], "--config") == 0) {
            if (!(conf_out = option_value(argc, argv, &i))) return CT_FAIL(CT_ERR_USAGE, "--config needs a file name");
        } else if (strcmp(argv[i], "--set") == 0) {
            const char *v = option_value(argc, argv, &i);
            if (!v) return CT_FAIL(CT_ERR_USAGE, "--set needs SECTION.KEY=VALUE");
            if (n_overrides == 64) return CT_FAIL(CT_ERR_USAGE, "too many --set options");
            overrides[n_overrides++] = v;
        } else if (argv[i][0] == '-') {
            return CT_FAIL(CT_ERR_USAGE, "import: unknown option '%s' (--output, --config, --set)", argv[i]);
        } else if (!target) {
            target = argv[i];
        } else {
            return CT_FAIL(CT_ERR_USAGE, "import: unexpected argument '%s'", argv[i]);
        }
    }
    if (!target || !output)
        return CT_FAIL(CT_ERR_USAGE, "usage: ctrain import DIR/model.json --output MODEL.h5 [--config CONF] [--set SECTION.KEY=VALUE]");
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    char *text = NULL;
    CT_TRY(ct_tfjs_import(target, overrides, n_overrides, &cfg, &m, conf_out ? &text : NULL));
    /* The input scaling predict and evaluate apply (the .h5 keeps it, as
     * training stores [augment] rescale). */
    ct_inputs norm = {.rescale = cfg->augment && cfg->augment->has_rescale ? cfg->augment->rescale : 1.0};
    ct_status s = ct_checkpoint_save(output, cfg, m, &norm, NULL, 0);
    char *abs = s == CT_OK && conf_out ? realpath(output, NULL) : NULL;
    if (s == CT_OK && conf_out) s = write_conf(conf_out, text, abs ? abs : output, overrides, n_overrides);
    free(abs);
    free(text);
    if (s == CT_OK) printf("import: wrote %s (%lld parameters)%s%s\n", output, (long long)ct_graph_count_params(m->graph, 0),
                           conf_out ? " and " : "", conf_out ? conf_out : "");
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

ct_status ct_convert_command(int argc, char **argv)
{
    if (strcmp(argv[1], "export-json") == 0) return export_json(argc, argv);
    if (strcmp(argv[1], "export") == 0) return export_tfjs(argc, argv);
    if (strcmp(argv[1], "serve") == 0) return ct_serve_command(argc, argv);
    return import_tfjs(argc, argv);
}
