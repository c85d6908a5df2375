/*
 * Node-API glue for the relay engine (engine.c): argument checks, errors as JS errors with the
 * errno name as `code`, the shared memory as ArrayBuffers, and the one events callback per loop
 * iteration. One engine per Node environment (the main thread or a worker).
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

typedef struct addon {
  napi_env env;
  engine_t *engine;
  napi_ref on_events;
  napi_async_context ctx;
} addon_t;

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      throw_status(env, #call);                                       \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static void throw_status(napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "shaper native: %s failed: %s", what, info && info->error_message ? info->error_message : "?");
  napi_throw_error(env, "SHAPER_ERR_NATIVE", msg);
}

static void throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, uv_strerror(-err));
  napi_throw_error(env, uv_err_name(-err), msg);
}

static addon_t *get_addon(napi_env env) {
  addon_t *a = NULL;
  napi_get_instance_data(env, (void **)&a);
  return a;
}

static engine_t *need_engine(napi_env env) {
  addon_t *a = get_addon(env);
  if (!a || !a->engine) {
    napi_throw_error(env, "SHAPER_ERR_NATIVE", "shaper native: the engine is not open");
    return NULL;
  }
  return a->engine;
}

static napi_status get_u32(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  napi_status s = napi_typeof(env, v, &t);
  if (s != napi_ok) return s;
  if (t != napi_number) return napi_number_expected;
  return napi_get_value_uint32(env, v, out);
}

static uint32_t opt_u32(napi_env env, napi_value obj, const char *key, uint32_t dflt) {
  bool has = false;
  napi_value v;
  uint32_t out = dflt;
  if (napi_has_named_property(env, obj, key, &has) == napi_ok && has &&
      napi_get_named_property(env, obj, key, &v) == napi_ok)
    get_u32(env, v, &out);
  return out;
}

/* ---- events ---------------------------------------------------------------------------------- */

static void deliver(engine_t *e, uint32_t n, void *arg) {
  (void)e;
  addon_t *a = arg;
  napi_env env = a->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  if (napi_get_reference_value(env, a->on_events, &cb) == napi_ok && cb &&
      napi_get_global(env, &recv) == napi_ok && napi_create_uint32(env, n, &argv[0]) == napi_ok) {
    napi_status s = napi_make_callback(env, a->ctx, recv, cb, 1, argv, &result);
    if (s == napi_pending_exception) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void release_shared(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  shared_release(hint);
}

static napi_value external(napi_env env, shared_t *m) {
  napi_value ab;
  m->refs++;
  if (napi_create_external_arraybuffer(env, m->p, m->bytes, release_shared, m, &ab) != napi_ok) {
    m->refs--;
    throw_status(env, "napi_create_external_arraybuffer");
    return NULL;
  }
  return ab;
}

static void close_engine(addon_t *a) {
  if (!a->engine) return;
  engine_close(a->engine);
  a->engine = NULL;
  if (a->on_events) napi_delete_reference(a->env, a->on_events);
  a->on_events = NULL;
  if (a->ctx) napi_async_destroy(a->env, a->ctx);
  a->ctx = NULL;
}

/* ---- exported functions ---------------------------------------------------------------------- */

/* open({ maxRelays, pipeSize, shapedPipeSize, maxPooled }, onEvents(count)) -> { state: ArrayBuffer, ints: ArrayBuffer } */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  addon_t *a = get_addon(env);
  if (a->engine) {
    napi_throw_error(env, "SHAPER_ERR_NATIVE", "shaper native: the engine is already open");
    return NULL;
  }
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (argc < 2 || t != napi_function) {
    napi_throw_type_error(env, NULL, "open(options, onEvents): onEvents must be a function");
    return NULL;
  }
  engine_options o = {
      .max_relays = opt_u32(env, argv[0], "maxRelays", 4096),
      .pipe_size = opt_u32(env, argv[0], "pipeSize", 0),
      .shaped_pipe_size = opt_u32(env, argv[0], "shapedPipeSize", 0),
      .max_pooled = opt_u32(env, argv[0], "maxPooled", 64),
  };
  if (o.max_relays == 0 || o.max_relays > (1u << 24)) {
    napi_throw_range_error(env, NULL, "open: maxRelays must be 1..16777216");
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  engine_t *e;
  int err = engine_open(&e, loop, &o, deliver, a);
  if (err < 0) {
    throw_errno(env, "open", err);
    return NULL;
  }
  napi_value name, res, state, ints;
  if (napi_create_string_utf8(env, "shaper-native-relay", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &a->ctx) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &a->on_events) != napi_ok) {
    a->engine = e;
    close_engine(a);
    throw_status(env, "open");
    return NULL;
  }
  a->engine = e;
  state = external(env, engine_state(e));
  if (!state) return NULL;
  ints = external(env, engine_ints(e));
  if (!ints) return NULL;
  CHECK(napi_create_object(env, &res));
  CHECK(napi_set_named_property(env, res, "state", state));
  CHECK(napi_set_named_property(env, res, "ints", ints));
  return res;
}

/* relay(clientFd, backendFd, preUp, preDown, shapedBits, limitUp, limitDown) -> id */
static napi_value js_relay(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = need_engine(env);
  if (!e) return NULL;
  if (argc < 7) {
    napi_throw_type_error(env, NULL, "relay: 7 arguments expected");
    return NULL;
  }
  uint32_t fd[2], shaped_bits, limit[2];
  if (get_u32(env, argv[0], &fd[0]) != napi_ok || get_u32(env, argv[1], &fd[1]) != napi_ok ||
      get_u32(env, argv[4], &shaped_bits) != napi_ok || get_u32(env, argv[5], &limit[0]) != napi_ok ||
      get_u32(env, argv[6], &limit[1]) != napi_ok) {
    napi_throw_type_error(env, NULL, "relay: descriptors, shaped bits and limits must be numbers");
    return NULL;
  }
  const char *pre[2] = {NULL, NULL};
  size_t pre_len[2] = {0, 0};
  for (int d = 0; d < 2; d++) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[2 + d], &t));
    if (t == napi_null || t == napi_undefined) continue;
    bool is_buffer = false;
    CHECK(napi_is_buffer(env, argv[2 + d], &is_buffer));
    if (!is_buffer) {
      napi_throw_type_error(env, NULL, "relay: prepended bytes must be a Buffer or null");
      return NULL;
    }
    void *data;
    CHECK(napi_get_buffer_info(env, argv[2 + d], &data, &pre_len[d]));
    pre[d] = data;
  }
  int shaped[2] = {(int)(shaped_bits & 1), (int)((shaped_bits >> 1) & 1)};
  int id = engine_relay(e, (int)fd[0], (int)fd[1], pre, pre_len, shaped, limit);
  if (id < 0) {
    throw_errno(env, "relay", id);
    return NULL;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, (uint32_t)id, &out));
  return out;
}

/* configure(id, dir, shaped, limit) */
static napi_value js_configure(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = need_engine(env);
  if (!e) return NULL;
  uint32_t id, dir, shaped, limit;
  if (argc < 4 || get_u32(env, argv[0], &id) != napi_ok || get_u32(env, argv[1], &dir) != napi_ok ||
      get_u32(env, argv[2], &shaped) != napi_ok || get_u32(env, argv[3], &limit) != napi_ok) {
    napi_throw_type_error(env, NULL, "configure(id, dir, shaped, limit): numbers expected");
    return NULL;
  }
  int err = engine_configure(e, id, (int)dir, (int)shaped, limit);
  if (err < 0) throw_errno(env, "configure", err);
  return NULL;
}

static napi_value js_commit(napi_env env, napi_callback_info info) {
  (void)info;
  engine_t *e = need_engine(env);
  if (e) engine_commit(e);
  return NULL;
}

/* release(id, reset) */
static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = need_engine(env);
  if (!e) return NULL;
  uint32_t id;
  bool reset = false;
  if (argc < 2 || get_u32(env, argv[0], &id) != napi_ok || napi_get_value_bool(env, argv[1], &reset) != napi_ok) {
    napi_throw_type_error(env, NULL, "release(id, reset): a number and a boolean expected");
    return NULL;
  }
  int err = engine_release(e, id, reset);
  if (err < 0) throw_errno(env, "release", err);
  return NULL;
}

/* end(id) */
static napi_value js_end(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = need_engine(env);
  if (!e) return NULL;
  uint32_t id;
  if (argc < 1 || get_u32(env, argv[0], &id) != napi_ok) {
    napi_throw_type_error(env, NULL, "end(id): a number expected");
    return NULL;
  }
  int err = engine_end(e, id);
  if (err < 0) throw_errno(env, "end", err);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  (void)info;
  close_engine(get_addon(env));
  return NULL;
}

static void cleanup(void *arg) { close_engine(arg); }

static void finalize_addon(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  addon_t *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->env = env;
  if (napi_set_instance_data(env, a, finalize_addon, NULL) != napi_ok) {
    free(a);
    return NULL;
  }
  napi_add_env_cleanup_hook(env, cleanup, a);
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relay", NULL, js_relay, NULL, NULL, NULL, napi_enumerable, NULL},
      {"configure", NULL, js_configure, NULL, NULL, NULL, napi_enumerable, NULL},
      {"commit", NULL, js_commit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"release", NULL, js_release, NULL, NULL, NULL, napi_enumerable, NULL},
      {"end", NULL, js_end, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
