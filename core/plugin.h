/* Loading the plugins a config names ([plugins] load = ...); the loader
 * itself is the public ct_plugin_load (ctrain.h). */
#ifndef CT_PLUGIN_H
#define CT_PLUGIN_H

#include "config.h"

/* Load every plugin of cfg->plugins in order; CT_ERR_CONFIG names the
 * config, the plugin and the reason. */
ct_status ct_plugins_load_config(const ct_config *cfg);

#endif
