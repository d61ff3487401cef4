/* A broken plugin for the loader's tests: built for another ABI version. */
#include <ctrain.h>

const int ct_plugin_abi_version = CT_ABI_VERSION + 1;
ct_status ct_plugin_register(void);
ct_status ct_plugin_register(void) { return CT_OK; }
