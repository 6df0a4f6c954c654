/*
 * podserve's native addon (build/Release/podserve.node, loaded by src/native.ts): the few system calls Node
 * does not offer. seqpacket.c: conmon's SOCK_SEQPACKET attach socket; mount.c: mount(2) and umount2(2).
 */
#include <node_api.h>

void register_seqpacket(napi_env env, napi_value exports);
void register_mount(napi_env env, napi_value exports);

/* memory.cc */
napi_value podserve_trim_memory(napi_env env, napi_callback_info info);
napi_value podserve_low_memory(napi_env env, napi_callback_info info);

static napi_value init(napi_env env, napi_value exports) {
  register_seqpacket(env, exports);
  register_mount(env, exports);
  napi_value fn;
  napi_create_function(env, "trimMemory", NAPI_AUTO_LENGTH, podserve_trim_memory, NULL, &fn);
  napi_set_named_property(env, exports, "trimMemory", fn);
  napi_create_function(env, "lowMemory", NAPI_AUTO_LENGTH, podserve_low_memory, NULL, &fn);
  napi_set_named_property(env, exports, "lowMemory", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
