/*
 * The relay engine (see engine.h): its lifecycle, the relays' slots, the events batch, grants and
 * the calls JavaScript makes. Moving the bytes is relay.c's.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- events ---------------------------------------------------------------------------------- */

static void on_idle(uv_idle_t *h) { (void)h; }

void engine_emit(relay_t *r, uint32_t bits) {
  engine_t *e = r->e;
  r->events |= bits;
  if (r->pending_at < 0) {
    r->pending_at = (int32_t)e->npending;
    e->pending[e->npending++] = r;
  }
  /* Events from outside the poll phase (a commit from a timer's JavaScript or from the prepare
   * handle) would otherwise wait for the next wake-up, as long as the next timer: an active idle
   * handle keeps the loop from blocking until on_check has delivered them. */
  if (!e->closing && !uv_is_active((uv_handle_t *)&e->idle)) uv_idle_start(&e->idle, on_idle);
}

static void unlist(relay_t *r) {
  engine_t *e = r->e;
  if (r->pending_at < 0) return;
  relay_t *last = e->pending[--e->npending];
  e->pending[r->pending_at] = last;
  last->pending_at = r->pending_at;
  r->pending_at = -1;
  r->events = 0;
}

static void on_check(uv_check_t *h) {
  engine_t *e = h->data;
  uv_idle_stop(&e->idle);
  if (e->npending == 0) return;
  int32_t *batch = e->ints + 2 * (size_t)e->o.max_relays;
  uint32_t n = e->npending;
  for (uint32_t k = 0; k < n; k++) {
    relay_t *r = e->pending[k];
    batch[2 * k] = (int32_t)r->id;
    batch[2 * k + 1] = (int32_t)r->events;
    r->events = 0;
    r->pending_at = -1;
  }
  e->npending = 0;
  /* JS may release relays or commit grants from here; what that emits goes to the next batch. */
  e->cb(e, n, e->arg);
}

/* ---- the engine ------------------------------------------------------------------------------ */

static void on_prepare(uv_prepare_t *h) {
  engine_t *e = h->data;
  if (header(e)[H_DIRTY] > 0) engine_commit(e);
}

static void free_engine(engine_t *e) {
  free(e->slots);
  free(e->free_ids);
  free(e->pending);
  free(e->scratch);
  free(e->pool[0]);
  free(e->pool[1]);
  shared_release(e->state_mem);
  shared_release(e->ints_mem);
  free(e);
}

shared_t *shared_new(size_t bytes) {
  shared_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->p = calloc(1, bytes ? bytes : 1);
  if (!m->p) {
    free(m);
    return NULL;
  }
  m->bytes = bytes;
  m->refs = 1;
  return m;
}

void shared_release(shared_t *m) {
  if (!m || --m->refs > 0) return;
  free(m->p);
  free(m);
}

int engine_open(engine_t **out, uv_loop_t *loop, const engine_options *o, engine_events_cb cb, void *arg) {
  engine_t *e = calloc(1, sizeof *e);
  if (!e) return -ENOMEM;
  e->loop = loop;
  e->o = *o;
  e->cb = cb;
  e->arg = arg;
  e->state_mem = shared_new(((size_t)o->max_relays + 1) * SLOT * sizeof(double));
  e->ints_mem = shared_new(4 * (size_t)o->max_relays * sizeof(int32_t));
  e->slots = calloc(o->max_relays, sizeof *e->slots);
  e->free_ids = malloc(o->max_relays * sizeof *e->free_ids);
  e->pending = malloc(o->max_relays * sizeof *e->pending);
  e->scratch = malloc(COPY_SIZE);
  for (int c = 0; c < 2; c++) e->pool[c] = malloc((o->max_pooled ? o->max_pooled : 1) * sizeof *e->pool[c]);
  if (!e->state_mem || !e->ints_mem || !e->slots || !e->free_ids || !e->pending || !e->scratch || !e->pool[0] || !e->pool[1]) {
    free_engine(e);
    return -ENOMEM;
  }
  e->state = e->state_mem->p;
  e->ints = e->ints_mem->p;
  for (uint32_t k = 0; k < o->max_relays; k++) e->free_ids[k] = o->max_relays - 1 - k;
  e->nfree = o->max_relays;
  header(e)[H_PIPE_SIZE] = o->pipe_size ? o->pipe_size : 65536;
  header(e)[H_SHAPED_PIPE_SIZE] = o->shaped_pipe_size ? o->shaped_pipe_size : 65536;
  uv_prepare_init(loop, &e->prepare);
  uv_check_init(loop, &e->check);
  uv_idle_init(loop, &e->idle);
  e->prepare.data = e->check.data = e->idle.data = e;
  uv_prepare_start(&e->prepare, on_prepare);
  uv_check_start(&e->check, on_check);
  /* None keeps the process alive: the relays' poll handles do, while they are open. */
  uv_unref((uv_handle_t *)&e->prepare);
  uv_unref((uv_handle_t *)&e->check);
  uv_unref((uv_handle_t *)&e->idle);
  e->refs = 3;
  *out = e;
  return 0;
}

void engine_unref(engine_t *e) {
  if (--e->refs == 0) free_engine(e);
}

static void on_engine_handle_closed(uv_handle_t *h) { engine_unref(h->data); }

void engine_close(engine_t *e) {
  e->closing = 1;
  for (uint32_t id = 0; id < e->o.max_relays; id++)
    if (e->slots[id]) engine_release(e, id, 0);
  for (int c = 0; c < 2; c++)
    while (e->npool[c] > 0) {
      pipe_pair p = e->pool[c][--e->npool[c]];
      close(p.r);
      close(p.w);
      count(e, H_POOLED, -1);
    }
  uv_close((uv_handle_t *)&e->prepare, on_engine_handle_closed);
  uv_close((uv_handle_t *)&e->check, on_engine_handle_closed);
  uv_close((uv_handle_t *)&e->idle, on_engine_handle_closed);
}

shared_t *engine_state(engine_t *e) { return e->state_mem; }
shared_t *engine_ints(engine_t *e) { return e->ints_mem; }

static void free_handle_data(uv_handle_t *h) { free(h->data); }

static int dup_socket(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return -errno;
  int fl = fcntl(d, F_GETFL);
  if (fl < 0 || fcntl(d, F_SETFL, fl | O_NONBLOCK) < 0) {
    int err = errno;
    close(d);
    return -err;
  }
  return d;
}

int engine_relay(engine_t *e, int client, int backend, const char *pre[2], const size_t pre_len[2],
                 const int shaped[2], const uint32_t limit[2]) {
  if (e->nfree == 0) return -ENOSPC;
  relay_t *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  int fds[2] = {dup_socket(client), -1};
  if (fds[0] >= 0) fds[1] = dup_socket(backend);
  if (fds[0] < 0 || fds[1] < 0) {
    int err = fds[0] < 0 ? fds[0] : fds[1];
    if (fds[0] >= 0) close(fds[0]);
    free(r);
    return err;
  }
  for (int d = 0; d < 2; d++) {
    if (pre_len[d] > 0) {
      r->d[d].pre = malloc(pre_len[d]);
      if (!r->d[d].pre) {
        free(r->d[0].pre);
        close(fds[0]);
        close(fds[1]);
        free(r);
        return -ENOMEM;
      }
      memcpy(r->d[d].pre, pre[d], pre_len[d]);
      r->d[d].pre_len = pre_len[d];
    }
  }
  for (int i = 0; i < 2; i++) {
    r->poll[i].data = r;
    int err = uv_poll_init(e->loop, &r->poll[i], fds[i]);
    if (err < 0) {
      for (int d = 0; d < 2; d++) free(r->d[d].pre);
      if (i == 1) uv_close((uv_handle_t *)&r->poll[0], free_handle_data); /* frees r */
      close(fds[0]);
      close(fds[1]);
      if (i == 0) free(r);
      return err; /* libuv errors are -errno on Unix */
    }
    r->poll[i].data = r;
  }
  uint32_t id = e->free_ids[--e->nfree];
  r->e = e;
  r->id = id;
  r->fd[0] = fds[0];
  r->fd[1] = fds[1];
  r->pending_at = -1;
  r->refs = 3;
  r->open = 1;
  e->refs++;
  e->slots[id] = r;
  double *s = slot(e, id);
  memset(s, 0, SLOT * sizeof *s);
  s[S_OPEN] = 1;
  s[S_ERRSIDE] = -1;
  count(e, H_RELAYS, 1);
  count(e, H_SLOTS, 1);
  count(e, H_SOCKETS, 2);
  count(e, H_ALLOCS, 1 + (pre_len[0] > 0) + (pre_len[1] > 0));
  for (int d = 0; d < 2; d++) {
    r->d[d].p.r = r->d[d].p.w = -1;
    r->d[d].shaped = shaped[d] != 0;
    r->d[d].limit = limit[d];
  }
  for (int d = 0; d < 2 && r->open; d++) relay_pump(r, d, 0);
  relay_after_io(r);
  return (int)id;
}

static relay_t *find(engine_t *e, uint32_t id) { return id < e->o.max_relays ? e->slots[id] : NULL; }

int engine_configure(engine_t *e, uint32_t id, int dir, int shaped, uint32_t limit) {
  relay_t *r = find(e, id);
  if (!r || dir < 0 || dir > 1) return -EINVAL;
  r->d[dir].shaped = shaped != 0;
  r->d[dir].limit = limit;
  if (!r->open) return 0;
  if (relay_pump(r, dir, 0) == 0) relay_after_io(r);
  return 0;
}

void engine_commit(engine_t *e) {
  double *h = header(e);
  uint32_t n = (uint32_t)h[H_DIRTY];
  h[H_DIRTY] = 0;
  for (uint32_t k = 0; k < n && k < 2 * e->o.max_relays; k++) {
    int32_t entry = e->ints[k];
    relay_t *r = find(e, (uint32_t)entry >> 1);
    if (!r) continue;
    int d = entry & 1;
    dslot(r, d)[S_DIRTY] = 0;
    if (r->open && relay_pump(r, d, 0) == 0) relay_after_io(r);
  }
}

int engine_end(engine_t *e, uint32_t id) {
  relay_t *r = find(e, id);
  if (!r) return -EINVAL;
  if (!r->open) return 0;
  for (int d = 0; d < 2 && r->open; d++) {
    r->d[d].eof = 1; /* read no more: what waits goes out, then the FIN */
    if (relay_pump(r, d, 0) < 0) return 0;
  }
  relay_after_io(r);
  return 0;
}

int engine_release(engine_t *e, uint32_t id, int reset) {
  relay_t *r = find(e, id);
  if (!r) return -EINVAL;
  relay_drop(r, reset ? 2 : -1);
  unlist(r);
  e->slots[id] = NULL;
  e->free_ids[e->nfree++] = id;
  memset(slot(e, id), 0, SLOT * sizeof(double));
  count(e, H_SLOTS, -1);
  relay_unref(r);
  return 0;
}
