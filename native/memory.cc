// lowMemory(): V8's LowMemoryNotification (full collections that also give back the young generation's and
// the allocator's free pages) followed by malloc_trim. For a daemon falling idle after a burst: V8 and glibc
// otherwise keep the memory the busiest moment needed (tens of MiB) until much later, or for good.
#include <malloc.h>
#include <node_api.h>
#include <v8.h>

extern "C" napi_value podserve_low_memory(napi_env env, napi_callback_info) {
  v8::Isolate::GetCurrent()->LowMemoryNotification();
  napi_value result;
  napi_get_boolean(env, malloc_trim(0) == 1, &result);
  return result;
}
