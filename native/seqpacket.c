/*
 * connectSeqpacket(path) -> fd: a connected, close-on-exec AF_UNIX SOCK_SEQPACKET socket.
 *
 * conmon's attach socket is SOCK_SEQPACKET, which Node's net module cannot open. Node can, however, drive
 * such an fd as a stream (src/oci/seqpacket.ts wraps it in a Pipe handle): every read() returns exactly one
 * packet, and pausing the stream stops reading so conmon blocks — real backpressure, which the npm socket
 * libraries cannot give. The path may exceed sun_path's 108 bytes: we connect through /proc/self/fd/N of
 * an O_PATH descriptor, as Podman does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[512];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error;
  napi_create_string_utf8(env, err == ENOENT ? "ENOENT" : err == ECONNREFUSED ? "ECONNREFUSED" : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_value errno_value;
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value connect_seqpacket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "connectSeqpacket(path: string) needs a path");
    return NULL;
  }
  char path[4096];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len == 0 || len >= sizeof path - 1) {
    napi_throw_type_error(env, NULL, "connectSeqpacket: path must be a non-empty string shorter than 4095 bytes");
    return NULL;
  }

  int path_fd = open(path, O_PATH | O_CLOEXEC);
  if (path_fd < 0) return throw_errno(env, path, errno);

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d", path_fd);

  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    close(path_fd);
    return throw_errno(env, "socket(AF_UNIX, SOCK_SEQPACKET)", err);
  }
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  } while (rc < 0 && errno == EINTR);
  int err = errno;
  close(path_fd);
  if (rc < 0) {
    close(fd);
    return throw_errno(env, path, err);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "connectSeqpacket", NAPI_AUTO_LENGTH, connect_seqpacket, NULL, &fn);
  napi_set_named_property(env, exports, "connectSeqpacket", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
