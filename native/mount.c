/*
 * mount(source, target, fstype, data) -> Promise<void> and unmount(target, detach) -> Promise<void>: the
 * mount(2) and umount2(2) system calls, run on libuv's thread pool.
 *
 * Every container start and removal mounts or unmounts its overlay root filesystem. Spawning util-linux's
 * mount for it costs a fork and an exec, during which Node's event loop waits; with several clients at once
 * that wait is the daemon's largest cost per container. The calls themselves may block (an unmount flushes),
 * hence the thread pool. Failures reject with an Error carrying `code` (e.g. "EBUSY") and `errno`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *source, *target, *fstype, *data;
  int unmount, detach, err;
} mount_job;

static char *string_arg(napi_env env, napi_value value) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s != NULL) napi_get_value_string_utf8(env, value, s, len + 1, &len);
  return s;
}

static void run_job(napi_env env, void *arg) {
  (void)env;
  mount_job *job = arg;
  int rc = job->unmount ? umount2(job->target, job->detach ? MNT_DETACH : 0)
                        : mount(job->source, job->target, job->fstype, 0, job->data);
  job->err = rc < 0 ? errno : 0;
}

static const char *errno_code(int err) {
  switch (err) {
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    default: return "EIO";
  }
}

static void finish_job(napi_env env, napi_status status, void *arg) {
  mount_job *job = arg;
  if (status == napi_ok && job->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    int err = status == napi_ok ? job->err : ECANCELED;
    char message[4200];
    snprintf(message, sizeof message, "%s %s: %s", job->unmount ? "umount" : "mount", job->target, strerror(err));
    napi_value code, msg, error, errno_value;
    napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &error);
    napi_create_int32(env, err, &errno_value);
    napi_set_named_property(env, error, "errno", errno_value);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job->source);
  free(job->target);
  free(job->fstype);
  free(job->data);
  free(job);
}

static napi_value queue_job(napi_env env, mount_job *job) {
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, job->unmount ? "podserve:umount" : "podserve:mount", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, run_job, finish_job, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static napi_value mount_fs(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  mount_job *job = calloc(1, sizeof *job);
  if (argc < 4 || job == NULL || (job->source = string_arg(env, argv[0])) == NULL || (job->target = string_arg(env, argv[1])) == NULL ||
      (job->fstype = string_arg(env, argv[2])) == NULL || (job->data = string_arg(env, argv[3])) == NULL) {
    if (job != NULL) {
      free(job->source);
      free(job->target);
      free(job->fstype);
      free(job);
    }
    napi_throw_type_error(env, NULL, "mount(source, target, fstype, data) takes four strings");
    return NULL;
  }
  return queue_job(env, job);
}

static napi_value unmount_fs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  mount_job *job = calloc(1, sizeof *job);
  bool detach = false;
  if (argc < 2 || job == NULL || (job->target = string_arg(env, argv[0])) == NULL || napi_get_value_bool(env, argv[1], &detach) != napi_ok) {
    if (job != NULL) free(job->target);
    free(job);
    napi_throw_type_error(env, NULL, "unmount(target, detach) takes a string and a boolean");
    return NULL;
  }
  job->unmount = 1;
  job->detach = detach;
  return queue_job(env, job);
}

void register_mount(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "mount", NAPI_AUTO_LENGTH, mount_fs, NULL, &fn);
  napi_set_named_property(env, exports, "mount", fn);
  napi_create_function(env, "unmount", NAPI_AUTO_LENGTH, unmount_fs, NULL, &fn);
  napi_set_named_property(env, exports, "unmount", fn);
}
