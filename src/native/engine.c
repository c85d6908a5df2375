/*
 * The relay engine (see engine.h). One direction: source socket -> pipe -> destination socket,
 * both legs by splice(2), so the bytes stay in the kernel as page references. The pipe is the
 * direction's queue: reading stops while it holds `limit` bytes (or the pipe has no free slot),
 * and a shaped direction writes only what JavaScript granted.
 */
#ifndef __linux__
#error "the native data plane needs Linux (splice, F_SETPIPE_SZ)"
#endif
#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* At most this many fill/drain rounds per direction per wake-up, so one fast relay cannot starve
 * the others (level-triggered polling brings it back in the next loop iteration). */
#define MAX_ROUNDS 16

typedef struct pipe_pair {
  int r, w;
  uint32_t cap;
  int cls; /* the pool it belongs to: 0 unshaped, 1 shaped */
} pipe_pair;

typedef struct dir {
  pipe_pair p;       /* r < 0: no pipe held */
  size_t inpipe;     /* bytes in the pipe */
  char *pre;         /* prepended bytes (owned), written before anything from the pipe */
  size_t pre_len, pre_off;
  uint32_t limit;    /* read-ahead bound; 0: the pipe's capacity */
  unsigned shaped : 1, eof : 1, fin : 1, dst_full : 1, pipe_full : 1;
  double moved;
} dir_t;

typedef struct relay {
  engine_t *e;
  uint32_t id;
  int fd[2];          /* 0 client, 1 backend; -1 once closed */
  uv_poll_t poll[2];
  int pev[2];         /* events each poll handle is started with */
  int no_pri[2];      /* the socket had out-of-band data: stop asking for UV_PRIORITIZED */
  dir_t d[2];         /* d[0]: fd[0] -> fd[1]; d[1]: fd[1] -> fd[0] */
  uint32_t events;    /* E_* bits not yet delivered */
  int32_t pending_at; /* index in e->pending, -1 when not there */
  int refs;           /* the slot + each open poll handle */
  int open;           /* holds its sockets */
} relay_t;

struct engine {
  uv_loop_t *loop;
  engine_options o;
  shared_t *state_mem, *ints_mem;
  double *state;
  int32_t *ints;
  engine_events_cb cb;
  void *arg;
  relay_t **slots;
  uint32_t *free_ids;
  uint32_t nfree;
  relay_t **pending; /* relays with undelivered events */
  uint32_t npending;
  pipe_pair *pool[2]; /* empty pipes for unshaped and for shaped directions (sized differently) */
  uint32_t npool[2];
  uv_prepare_t prepare; /* applies grants JS listed but did not commit, before the loop blocks */
  uv_check_t check;     /* delivers the iteration's events in one call */
  int refs;             /* the engine's own open handles + relay structures alive */
  int closing;
};

static double *slot(engine_t *e, uint32_t id) { return e->state + (size_t)id * SLOT; }
static double *dslot(relay_t *r, int d) { return slot(r->e, r->id) + d * S_DIR; }
static double *header(engine_t *e) { return slot(e, e->o.max_relays); }

static void count(engine_t *e, int field, double delta) { header(e)[field] += delta; }

static void engine_unref(engine_t *e);

static void maybe_free_relay(relay_t *r) {
  if (--r->refs > 0) return;
  engine_t *e = r->e;
  count(e, H_ALLOCS, -1);
  free(r);
  engine_unref(e);
}

/* ---- pipes ---------------------------------------------------------------------------------- */

static uint32_t class_size(const engine_t *e, int cls) { return cls ? e->o.shaped_pipe_size : e->o.pipe_size; }

static int take_pipe(engine_t *e, int cls, pipe_pair *out) {
  if (e->npool[cls] > 0) {
    *out = e->pool[cls][--e->npool[cls]];
    count(e, H_POOLED, -1);
  } else {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
    uint32_t size = class_size(e, cls);
    if (size) (void)fcntl(fds[1], F_SETPIPE_SZ, (int)size); /* best effort: the capacity below is what counts */
    int cap = fcntl(fds[1], F_GETPIPE_SZ);
    out->r = fds[0];
    out->w = fds[1];
    out->cap = cap > 0 ? (uint32_t)cap : 4096;
    out->cls = cls;
  }
  count(e, H_PIPES, 1);
  return 0;
}

/* An empty pipe goes back to the pool (or is closed when the pool is full); a pipe still holding
 * bytes is closed, which discards them. */
static void give_pipe(engine_t *e, dir_t *x) {
  if (x->p.r < 0) return;
  count(e, H_PIPES, -1);
  int cls = x->p.cls;
  if (x->inpipe == 0 && !e->closing && e->npool[cls] < e->o.max_pooled) {
    e->pool[cls][e->npool[cls]++] = x->p;
    count(e, H_POOLED, 1);
  } else {
    close(x->p.r);
    close(x->p.w);
  }
  x->p.r = x->p.w = -1;
  x->inpipe = 0;
  x->pipe_full = 0;
}

/* ---- events ---------------------------------------------------------------------------------- */

static void emit(relay_t *r, uint32_t bits) {
  engine_t *e = r->e;
  r->events |= bits;
  if (r->pending_at < 0) {
    r->pending_at = (int32_t)e->npending;
    e->pending[e->npending++] = r;
  }
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

/* ---- one relay ------------------------------------------------------------------------------- */

static size_t queued(const dir_t *x) { return x->pre_len - x->pre_off + x->inpipe; }

static uint32_t limit_of(const dir_t *x, const engine_t *e) {
  uint32_t size = class_size(e, x->shaped);
  uint32_t cap = x->p.r >= 0 ? x->p.cap : (size ? size : 65536);
  return x->limit && x->limit < cap ? x->limit : cap;
}

/* What JavaScript's sendable() sees: bytes waiting that may go now and were not granted yet. */
static double sendable(relay_t *r, int d) {
  const dir_t *x = &r->d[d];
  if (x->dst_full) return 0;
  double outstanding = dslot(r, d)[S_GRANTED] - x->moved;
  double s = (double)queued(x) - (outstanding > 0 ? outstanding : 0);
  return s > 0 ? s : 0;
}

static void mirror(relay_t *r, int d) {
  const dir_t *x = &r->d[d];
  double *s = dslot(r, d);
  s[S_QUEUED] = (double)queued(x);
  s[S_MOVED] = x->moved;
  s[S_DSTFULL] = x->dst_full;
  s[S_FLAGS] = (x->shaped ? F_SHAPED : 0) | (x->eof ? F_EOF : 0) | (x->fin ? F_FIN : 0);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_poll(relay_t *r, int i, int ev) {
  if (r->pev[i] == ev) return;
  r->pev[i] = ev;
  if (ev) uv_poll_start(&r->poll[i], ev, on_poll);
  else uv_poll_stop(&r->poll[i]);
}

static int wants_read(relay_t *r, int d) {
  const dir_t *x = &r->d[d];
  return !x->eof && !x->pipe_full && queued(x) < limit_of(x, r->e);
}

/*
 * Every socket with something left to do stays registered, asking at least for UV_PRIORITIZED:
 * epoll then reports its errors and hang-ups even while the relay neither reads nor writes it
 * (a paused source, a shaped direction waiting for grants). Without that, a reset arriving then
 * would go unnoticed: the reset libuv streams report as a clean EOF. libuv hands the error or
 * hang-up to on_poll as UV_PRIORITIZED (or as status UV_EBADF).
 */
static void update_polls(relay_t *r) {
  for (int i = 0; i < 2; i++) {
    int finished = r->d[i].eof && r->d[1 - i].fin; /* read to EOF and our FIN sent: nothing left */
    int ev = (wants_read(r, i) ? UV_READABLE : 0) | (r->d[1 - i].dst_full ? UV_WRITABLE : 0) |
             (!finished && !r->no_pri[i] ? UV_PRIORITIZED : 0);
    set_poll(r, i, ev);
  }
}

static void on_poll_closed(uv_handle_t *h) { maybe_free_relay(h->data); }

/* Lets go of the sockets and pipes. `reset` >= 0: the socket to close with an RST (linger 0);
 * 2: both. The relay stays in its slot (the counters) until JavaScript releases it. */
static void drop(relay_t *r, int reset) {
  engine_t *e = r->e;
  if (!r->open) return;
  r->open = 0;
  for (int i = 0; i < 2; i++) {
    uv_close((uv_handle_t *)&r->poll[i], on_poll_closed); /* stops polling before the close below */
    if (reset == i || reset == 2) {
      struct linger l = {1, 0};
      (void)setsockopt(r->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(r->fd[i]);
    r->fd[i] = -1;
    count(e, H_SOCKETS, -1);
  }
  for (int d = 0; d < 2; d++) {
    dir_t *x = &r->d[d];
    give_pipe(e, x);
    if (x->pre) {
      free(x->pre);
      x->pre = NULL;
      count(e, H_ALLOCS, -1);
    }
    x->pre_len = x->pre_off = 0;
    x->dst_full = 0;
    mirror(r, d);
  }
  slot(e, r->id)[S_OPEN] = 0;
  count(e, H_RELAYS, -1);
}

/* `side` (0 client, 1 backend, 2 the engine itself) failed with `err`: the other side is reset,
 * as the peer that failed would have reset a direct connection. */
static void fail(relay_t *r, int side, int err) {
  double *s = slot(r->e, r->id);
  s[S_ERRNO] = err;
  s[S_ERRSIDE] = side;
  drop(r, side == 2 ? 2 : 1 - side);
  emit(r, E_ERROR | E_DONE);
}

static void finish_if_done(relay_t *r) {
  if (r->open && r->d[0].fin && r->d[1].fin) {
    drop(r, -1);
    emit(r, E_DONE);
  }
}

/* Moves what direction d may move now. Returns 0, or -1 when the relay failed. */
static int pump(relay_t *r, int d, int writable) {
  engine_t *e = r->e;
  dir_t *x = &r->d[d];
  int src = r->fd[d], dst = r->fd[1 - d];
  double before = x->shaped ? sendable(r, d) : 0;
  if (writable) x->dst_full = 0;

  for (int round = 0; round < MAX_ROUNDS; round++) {
    int progress = 0;
    /* fill */
    if (!x->eof && !x->pipe_full) {
      uint32_t lim = limit_of(x, e);
      size_t q = queued(x);
      if (q < lim) {
        if (x->p.r < 0) {
          int err = take_pipe(e, x->shaped, &x->p);
          if (err < 0) {
            fail(r, 2, -err);
            return -1;
          }
          lim = limit_of(x, e);
        }
        ssize_t n = splice(src, NULL, x->p.w, NULL, lim - q, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          x->inpipe += (size_t)n;
          progress = 1;
        } else if (n == 0) {
          x->eof = 1;
          progress = 1;
        } else if (errno == EAGAIN) {
          /* The socket is empty, or the pipe has no free slot (small segments fill its slots long
           * before its bytes): the socket's queue tells which. */
          int avail = 0;
          if (x->inpipe > 0 && ioctl(src, FIONREAD, &avail) == 0 && avail > 0) x->pipe_full = 1;
        } else if (errno != EINTR) {
          fail(r, d, errno);
          return -1;
        }
        if (x->inpipe == 0) give_pipe(e, x); /* idle: hold no pipe */
      }
    }
    /* drain */
    size_t q = queued(x);
    if (!x->dst_full && q > 0) {
      size_t allowed = q;
      if (x->shaped) {
        double credit = dslot(r, d)[S_GRANTED] - x->moved;
        allowed = credit <= 0 ? 0 : credit < (double)q ? (size_t)credit : q;
      }
      if (allowed > 0) {
        ssize_t n;
        size_t pre_left = x->pre_len - x->pre_off;
        if (pre_left > 0) {
          n = send(dst, x->pre + x->pre_off, allowed < pre_left ? allowed : pre_left, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
          n = splice(x->p.r, NULL, dst, NULL, allowed, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        }
        if (n > 0) {
          if (pre_left > 0) {
            x->pre_off += (size_t)n;
            if (x->pre_off == x->pre_len) {
              free(x->pre);
              x->pre = NULL;
              x->pre_len = x->pre_off = 0;
              count(e, H_ALLOCS, -1);
            }
          } else {
            x->inpipe -= (size_t)n;
            x->pipe_full = 0;
            if (x->inpipe == 0) give_pipe(e, x);
          }
          x->moved += (double)n;
          progress = 1;
        } else if (n < 0 && errno == EAGAIN) {
          x->dst_full = 1;
        } else if (n < 0 && errno != EINTR) {
          fail(r, 1 - d, errno);
          return -1;
        }
      }
    }
    /* the FIN goes after the last byte */
    if (x->eof && !x->fin && queued(x) == 0) {
      x->fin = 1;
      (void)shutdown(dst, SHUT_WR); /* ENOTCONN: the destination is gone; its own poll reports that */
      emit(r, d ? E_FIN1 : E_FIN0);
    }
    if (!progress) break;
  }
  mirror(r, d);
  if (x->shaped && before == 0 && sendable(r, d) > 0) emit(r, d ? E_DATA1 : E_DATA0);
  return 0;
}

static void after_io(relay_t *r) {
  if (!r->open) return;
  finish_if_done(r);
  if (r->open) update_polls(r);
}

/* The socket's pending error, 0 if none. */
static int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  relay_t *r = h->data;
  int i = h == &r->poll[1];
  if (!r->open) return;
  if (status < 0) {
    /* libuv stopped the handle on POLLERR: the socket's pending error says what happened. */
    r->pev[i] = 0;
    int err = socket_error(r->fd[i]);
    fail(r, i, err ? err : ECONNRESET);
    return;
  }
  if (events & UV_PRIORITIZED) {
    int err = socket_error(r->fd[i]);
    if (err) {
      fail(r, i, err);
      return;
    }
    /* No error: a hang-up after both FINs while bytes are still to be read (level-triggered, so
     * it would fire every iteration), or real out-of-band data. The reads and writes still asked
     * for see the rest; stop asking for UV_PRIORITIZED on this socket. */
    r->no_pri[i] = 1;
  }
  if ((events & UV_READABLE) && pump(r, i, 0) < 0) return;
  if ((events & UV_WRITABLE) && pump(r, 1 - i, 1) < 0) return;
  after_io(r);
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
  for (int c = 0; c < 2; c++) e->pool[c] = malloc((o->max_pooled ? o->max_pooled : 1) * sizeof *e->pool[c]);
  if (!e->state_mem || !e->ints_mem || !e->slots || !e->free_ids || !e->pending || !e->pool[0] || !e->pool[1]) {
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
  e->prepare.data = e->check.data = e;
  uv_prepare_start(&e->prepare, on_prepare);
  uv_check_start(&e->check, on_check);
  /* Neither keeps the process alive: the relays' poll handles do, while they are open. */
  uv_unref((uv_handle_t *)&e->prepare);
  uv_unref((uv_handle_t *)&e->check);
  e->refs = 2;
  *out = e;
  return 0;
}

static void engine_unref(engine_t *e) {
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
  for (int d = 0; d < 2 && r->open; d++) pump(r, d, 0);
  after_io(r);
  return (int)id;
}

static relay_t *find(engine_t *e, uint32_t id) { return id < e->o.max_relays ? e->slots[id] : NULL; }

int engine_configure(engine_t *e, uint32_t id, int dir, int shaped, uint32_t limit) {
  relay_t *r = find(e, id);
  if (!r || dir < 0 || dir > 1) return -EINVAL;
  r->d[dir].shaped = shaped != 0;
  r->d[dir].limit = limit;
  if (!r->open) return 0;
  if (pump(r, dir, 0) == 0) after_io(r);
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
    if (r->open && pump(r, d, 0) == 0) after_io(r);
  }
}

int engine_end(engine_t *e, uint32_t id) {
  relay_t *r = find(e, id);
  if (!r) return -EINVAL;
  if (!r->open) return 0;
  for (int d = 0; d < 2 && r->open; d++) {
    r->d[d].eof = 1; /* read no more: what waits goes out, then the FIN */
    if (pump(r, d, 0) < 0) return 0;
  }
  after_io(r);
  return 0;
}

int engine_release(engine_t *e, uint32_t id, int reset) {
  relay_t *r = find(e, id);
  if (!r) return -EINVAL;
  drop(r, reset ? 2 : -1);
  unlist(r);
  e->slots[id] = NULL;
  e->free_ids[e->nfree++] = id;
  memset(slot(e, id), 0, SLOT * sizeof(double));
  count(e, H_SLOTS, -1);
  maybe_free_relay(r);
  return 0;
}
