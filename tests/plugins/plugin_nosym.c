/* A broken plugin for the loader's tests: the ABI version but no
 * ct_plugin_register. */
#include <ctrain.h>

const int ct_plugin_abi_version = CT_ABI_VERSION;
