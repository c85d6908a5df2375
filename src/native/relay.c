/*
 * Moving one relay's bytes (see engine.h). One direction: source socket -> pipe -> destination
 * socket, both legs by splice(2), so the bytes stay in the kernel as page references. The pipe is
 * the direction's queue: reading stops while it holds `limit` bytes (or the pipe has no free
 * slot), and a shaped direction writes only what JavaScript granted.
 */
#ifndef __linux__
#error "the native data plane needs Linux (splice, F_SETPIPE_SZ)"
#endif
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

void relay_unref(relay_t *r) {
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
void relay_give_pipe(engine_t *e, dir_t *x) {
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

/*
 * Whether the queue (`q` bytes of `lim`) takes more. A shaped direction tops it up only once no
 * more than half is left: a run of grants smaller than the queue (turns under a shared cap) then
 * costs a read per half a queue, not one per grant.
 */
static int may_fill(const dir_t *x, size_t q, uint32_t lim) { return q < lim && !(x->shaped && 2 * q > lim); }

/*
 * Whether to poll the source for reading. A shaped direction polls only while its queue is empty
 * (unless it is starved, see dir_t.starved); otherwise it tops the queue up when a grant moves
 * bytes (the pump after the grant reads what came in the meantime). The source's arrivals then
 * wake the loop only for an idle connection, not at every segment of a busy one: the loop wakes
 * for the scheduler's grants, and reads ride along.
 */
static int wants_read(relay_t *r, int d) {
  const dir_t *x = &r->d[d];
  size_t q = queued(x);
  if (x->shaped && !x->starved && q > 0) return 0;
  return !x->eof && !x->pipe_full && may_fill(x, q, limit_of(x, r->e));
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

static void on_poll_closed(uv_handle_t *h) { relay_unref(h->data); }

/* Lets go of the sockets and pipes. `reset` >= 0: the socket to close with an RST (linger 0);
 * 2: both. The relay stays in its slot (the counters) until JavaScript releases it. */
void relay_drop(relay_t *r, int reset) {
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
    relay_give_pipe(e, x);
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
  relay_drop(r, side == 2 ? 2 : 1 - side);
  engine_emit(r, E_ERROR | E_DONE);
}

static void finish_if_done(relay_t *r) {
  if (r->open && r->d[0].fin && r->d[1].fin) {
    relay_drop(r, -1);
    engine_emit(r, E_DONE);
  }
}

/*
 * The copy path: an unshaped direction with nothing waiting reads into the engine's buffer and
 * writes that straight on (recv and send, as nginx and HAProxy relay). For request/response
 * messages this is cheaper than splicing page references through a pipe and back out; a read that
 * fills the buffer means bulk data, and the direction splices from then on (`bulk`). What the
 * destination does not take waits as the direction's first bytes (`pre`), like prepended bytes.
 * Returns the bytes read (0: the source's FIN), -1 when there was nothing to read, -2 after fail().
 */
static ssize_t copy_through(relay_t *r, int d, size_t want) {
  engine_t *e = r->e;
  dir_t *x = &r->d[d];
  if (want > COPY_SIZE) want = COPY_SIZE;
  ssize_t n = recv(r->fd[d], e->scratch, want, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return -1;
    fail(r, d, errno);
    return -2;
  }
  if (n == 0) return 0;
  size_t sent = 0;
  while (sent < (size_t)n) {
    ssize_t s = send(r->fd[1 - d], e->scratch + sent, (size_t)n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (s > 0) sent += (size_t)s;
    else if (s < 0 && errno == EINTR) continue;
    else if (s < 0 && errno != EAGAIN) {
      fail(r, 1 - d, errno);
      return -2;
    } else break;
  }
  x->moved += (double)sent;
  if (sent < (size_t)n) {
    x->pre = malloc((size_t)n - sent);
    if (!x->pre) {
      fail(r, 2, ENOMEM);
      return -2;
    }
    memcpy(x->pre, e->scratch + sent, (size_t)n - sent);
    x->pre_len = (size_t)n - sent;
    x->pre_off = 0;
    x->dst_full = 1;
    count(e, H_ALLOCS, 1);
  }
  if ((size_t)n == COPY_SIZE) x->bulk = 1;
  return n;
}

/* Moves what direction d may move now. Returns 0, or -1 when the relay failed. */
int relay_pump(relay_t *r, int d, int writable) {
  engine_t *e = r->e;
  dir_t *x = &r->d[d];
  int src = r->fd[d], dst = r->fd[1 - d];
  double before = x->shaped ? sendable(r, d) : 0;
  if (writable) x->dst_full = 0;

  /* A short read means the socket is empty for now: another read would only say EAGAIN (for
   * request/response traffic, one syscall in three); level-triggered polling tells when more came. */
  int dry = 0;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    int progress = 0;
    /* fill */
    if (!x->eof && !x->pipe_full && !dry) {
      uint32_t lim = limit_of(x, e);
      size_t q = queued(x);
      if (may_fill(x, q, lim) && !x->shaped && !x->bulk && q == 0) {
        ssize_t n = copy_through(r, d, lim);
        if (n == -2) return -1;
        if (n >= 0) {
          progress = 1;
          if (n == 0) x->eof = 1;
          else {
            dry = (size_t)n < (lim < COPY_SIZE ? lim : COPY_SIZE);
            if (!x->first) {
              x->first = 1;
              engine_emit(r, d ? E_FIRST1 : E_FIRST0);
            }
          }
        }
      } else if (may_fill(x, q, lim)) {
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
          dry = (size_t)n < lim - q;
          if ((size_t)n < COPY_SIZE) x->bulk = 0; /* small again: the copy path, once the pipe is empty */
          if (!x->first) {
            x->first = 1;
            engine_emit(r, d ? E_FIRST1 : E_FIRST0);
          }
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
        if (x->inpipe == 0) relay_give_pipe(e, x); /* idle: hold no pipe */
      }
    }
    /* drain */
    size_t q = queued(x);
    if (!x->dst_full && q > 0) {
      size_t allowed = q;
      if (x->shaped) {
        double credit = dslot(r, d)[S_GRANTED] - x->moved;
        allowed = credit <= 0 ? 0 : credit < (double)q ? (size_t)credit : q;
        /* A new grant for all that waits: the queue, not the tokens, set its size. */
        if (credit > 0 && !x->pre_len) x->starved = credit >= (double)q;
      }
      if (allowed > 0) {
        ssize_t n;
        size_t pre_left = x->pre_len - x->pre_off;
        size_t want = pre_left > 0 && pre_left < allowed ? pre_left : allowed;
        if (pre_left > 0) {
          n = send(dst, x->pre + x->pre_off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
          n = splice(x->p.r, NULL, dst, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
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
            if (x->inpipe == 0) relay_give_pipe(e, x);
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
      engine_emit(r, d ? E_FIN1 : E_FIN0);
    }
    if (!progress) break;
  }
  mirror(r, d);
  if (x->shaped && before == 0 && sendable(r, d) > 0) engine_emit(r, d ? E_DATA1 : E_DATA0);
  return 0;
}

void relay_after_io(relay_t *r) {
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
  if ((events & UV_READABLE) && relay_pump(r, i, 0) < 0) return;
  if ((events & UV_WRITABLE) && relay_pump(r, 1 - i, 1) < 0) return;
  relay_after_io(r);
}

