/* The converter commands: export-json (the architecture as Keras JSON,
 * Keras's model.to_json()). They run in one process and parse their own
 * options. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "config.h"
#include "keras_json.h"
#include "launcher.h"
#include "model.h"

int ct_convert_is_command(const char *cmd)
{
    return strcmp(cmd, "export-json") == 0;
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

ct_status ct_convert_command(int argc, char **argv)
{
    return export_json(argc, argv);
}
