/*
 * connectSeqpacket(path) -> fd: a connected, close-on-exec AF_UNIX SOCK_SEQPACKET socket.
 *
 * conmon's attach socket is SOCK_SEQPACKET, which Node's net module cannot open. Node can, however, drive
 * such an fd as a stream (src/oci/seqpacket.ts wraps it in a Pipe handle): every read() returns exactly one
 * packet, and pausing the stream stops reading so conmon blocks — real backpressure, which the npm socket
 * libraries cannot give. The path may exceed sun_path's 108 bytes: we connect through /proc/self/fd/N of
 * an O_PATH descriptor, as Podman does.
 *
 * recvBatch(fd, buffer, meta) -> count: takes every packet already queued on such a socket in one call, so
 * a fast producer costs one trip through the event loop per batch instead of one per 8 KiB packet. conmon
 * prefixes each packet with its pipe byte; the payloads land back to back in `buffer` from offset 1 (each
 * packet is received one byte early and the byte it overwrote restored), so consecutive packets of one
 * pipe form one contiguous slice. meta[0] is the status (0: nothing more queued, 1: end of stream, or
 * -errno), then (pipe, length) per packet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
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

/* Space a receive needs so that no packet is truncated: conmon sends at most 1 + 8192 bytes; any AF_UNIX
 * SEQPACKET record fits in 64 KiB with the default socket buffers. */
#define MAX_PACKET (64 * 1024)

static napi_value recv_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  void *data = NULL;
  size_t size = 0;
  napi_typedarray_type meta_type;
  size_t meta_length = 0;
  void *meta_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &meta_type, &meta_length, &meta_data, NULL, NULL) != napi_ok ||
      meta_type != napi_int32_array || meta_length < 3) {
    napi_throw_type_error(env, NULL, "recvBatch(fd: number, buffer: Buffer, meta: Int32Array) needs an fd, a Buffer and an Int32Array of 3 or more");
    return NULL;
  }
  unsigned char *buf = data;
  int32_t *meta = meta_data;
  size_t max_packets = (meta_length - 1) / 2;
  size_t off = 1, count = 0;
  int32_t status = 0;
  while (count < max_packets && size - off + 1 >= MAX_PACKET) {
    unsigned char saved = buf[off - 1];
    ssize_t n = recv(fd, buf + off - 1, size - off + 1, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) status = -errno;
      break;
    }
    if (n == 0) {
      status = 1;
      break;
    }
    meta[1 + 2 * count] = buf[off - 1];
    meta[2 + 2 * count] = (int32_t)(n - 1);
    buf[off - 1] = saved;
    off += (size_t)(n - 1);
    count++;
  }
  meta[0] = status;
  napi_value result;
  napi_create_uint32(env, (uint32_t)count, &result);
  return result;
}

void register_seqpacket(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "connectSeqpacket", NAPI_AUTO_LENGTH, connect_seqpacket, NULL, &fn);
  napi_set_named_property(env, exports, "connectSeqpacket", fn);
  napi_create_function(env, "recvBatch", NAPI_AUTO_LENGTH, recv_batch, NULL, &fn);
  napi_set_named_property(env, exports, "recvBatch", fn);
}
