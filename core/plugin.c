/* Plugins: shared objects that register layers (or losses, metrics) when
 * loaded, named in a config's [plugins] load = ... or loaded from C.
 *
 * A plugin exports `const int ct_plugin_abi_version` (the CT_ABI_VERSION
 * it was compiled against) and `ct_status ct_plugin_register(void)`;
 * ctrain.h's CT_PLUGIN macro defines both. Loaded with RTLD_NOW, so a
 * plugin that needs a function the library lacks fails at load, naming the
 * symbol. Plugins are never unloaded: the layer types they registered are
 * in use until the process ends. */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "layer.h"
#include "plugin.h"

#define PLUGINS_MAX 64

static char *loaded[PLUGINS_MAX];
static int n_loaded;

ct_status ct_plugin_load(const char *path)
{
    if (!path || !*path) return CT_FAIL(CT_ERR_USAGE, "ct_plugin_load: no path");
    ct_register_builtins();
    char real[PATH_MAX];
    const char *key = realpath(path, real) ? real : path;
    for (int i = 0; i < n_loaded; i++)
        if (!strcmp(loaded[i], key)) return CT_OK;
    if (n_loaded == PLUGINS_MAX)
        return CT_FAIL(CT_ERR_CONFIG, "plugin '%s': at most %d plugins can be loaded", path, PLUGINS_MAX);
    /* dlopen searches the library path for names without a slash; a
     * plugin named in a config is a file, so make that explicit */
    char local[PATH_MAX + 2];
    const char *open_as = path;
    if (!strchr(path, '/')) {
        snprintf(local, sizeof local, "./%s", path);
        open_as = local;
    }
    dlerror();
    void *h = dlopen(open_as, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return CT_FAIL(CT_ERR_CONFIG, "plugin '%s': cannot load it: %s", path, why ? why : "unknown error");
    }
    const int *abi = dlsym(h, CT_PLUGIN_ABI_SYMBOL);
    ct_status (*reg)(void) = (ct_status(*)(void))dlsym(h, CT_PLUGIN_REGISTER_SYMBOL);
    if (!abi || !reg) {
        dlclose(h);
        return CT_FAIL(CT_ERR_CONFIG,
                       "plugin '%s': symbol %s is missing (a plugin defines %s and %s, e.g. with CT_PLUGIN from "
                       "ctrain.h)",
                       path, !abi ? CT_PLUGIN_ABI_SYMBOL : CT_PLUGIN_REGISTER_SYMBOL, CT_PLUGIN_ABI_SYMBOL,
                       CT_PLUGIN_REGISTER_SYMBOL);
    }
    if (*abi != CT_ABI_VERSION) {
        int v = *abi;
        dlclose(h);
        return CT_FAIL(CT_ERR_CONFIG,
                       "plugin '%s': built for ctrain ABI version %d, this library has ABI version %d; rebuild "
                       "the plugin against this ctrain.h",
                       path, v, CT_ABI_VERSION);
    }
    ct_status s = reg();
    if (s != CT_OK) {
        ct_error_prefix("plugin '%s': registration failed: ", path);
        return s == CT_ERR_CONFIG ? s : CT_ERR_CONFIG;
    }
    if (!(loaded[n_loaded] = strdup(key))) return CT_FAIL(CT_ERR_NOMEM, "plugin '%s': out of memory", path);
    n_loaded++;
    return CT_OK;
}

ct_status ct_plugins_load_config(const ct_config *cfg)
{
    if (!cfg || !cfg->plugins) return CT_OK;
    for (size_t i = 0; i < cfg->plugins->n_load; i++) {
        ct_status s = ct_plugin_load(cfg->plugins->load[i]);
        if (s != CT_OK) {
            ct_error_prefix("%s: [plugins] load: ", cfg->source ? cfg->source : "config");
            return s;
        }
    }
    return CT_OK;
}
