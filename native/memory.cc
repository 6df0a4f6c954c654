// Giving memory back when the daemon is quiet (src/memory.ts). V8 and glibc otherwise keep what the busiest
// moment needed (tens of MiB) until much later, or for good.
//   trimMemory(): malloc_trim, the C heap's free pages (Buffers, the thread pool) back to the kernel.
//   lowMemory():  V8's LowMemoryNotification (full collections that also shrink the young generation and drop
//                 compiled-code caches), then malloc_trim. The requests after it run slower for a while.
#include <malloc.h>
#include <node_api.h>
#include <v8.h>

static napi_value boolean(napi_env env, bool value) {
  napi_value result;
  napi_get_boolean(env, value, &result);
  return result;
}

extern "C" napi_value podserve_trim_memory(napi_env env, napi_callback_info) {
  return boolean(env, malloc_trim(0) == 1);
}

extern "C" napi_value podserve_low_memory(napi_env env, napi_callback_info) {
  v8::Isolate::GetCurrent()->LowMemoryNotification();
  return boolean(env, malloc_trim(0) == 1);
}
