/*
 * The native data plane: relays between pairs of connected TCP sockets, socket -> pipe -> socket
 * with splice(2) per direction, driven by libuv poll handles on Node's own event loop. It owns no
 * policy: JavaScript hands it sockets, grants bytes to shaped directions and closes relays; the
 * engine moves bytes and reports counts and events.
 *
 * Shared memory (read and written by JavaScript through typed arrays):
 *   state:  double[(max_relays + 1) * SLOT]: one slot per relay, the last slot the engine header.
 *   ints:   int32[4 * max_relays]: the dirty list (relay * 2 + dir), then the event batch
 *           (relay, mask) pairs.
 * Every field is written by one side only (see the S_* and H_* comments), so neither side ever
 * overwrites what the other counts.
 */
#ifndef SHAPER_ENGINE_H
#define SHAPER_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Per relay slot, in doubles. Direction d (0: client -> backend, 1: backend -> client) at d * S_DIR. */
#define SLOT 16
#define S_DIR 6
#define S_QUEUED 0   /* native: bytes waiting (prepended bytes not yet written + bytes in the pipe) */
#define S_MOVED 1    /* native: bytes written to the destination, ever */
#define S_GRANTED 2  /* JS: bytes granted, ever (shaped directions only) */
#define S_DSTFULL 3  /* native: 1 while the destination refuses more (EAGAIN) */
#define S_DIRTY 4    /* JS sets 1 when it listed the direction as dirty; native clears it */
#define S_FLAGS 5    /* native: F_* bits */
#define S_ERRNO 12   /* native: errno of the failure that ended the relay, 0 if none */
#define S_ERRSIDE 13 /* native: the socket that failed: 0 client, 1 backend, -1 none */
#define S_OPEN 14    /* native: 1 while the relay holds its sockets */

#define F_SHAPED 1 /* the direction moves only granted bytes */
#define F_EOF 2    /* the source sent its FIN */
#define F_FIN 4    /* the FIN was passed on (shutdown(SHUT_WR) on the destination) */

/* The header slot (index max_relays), native-written. */
#define H_RELAYS 0     /* relays holding sockets */
#define H_SOCKETS 1    /* socket descriptors the engine holds */
#define H_PIPES 2      /* pipes in use (two descriptors each) */
#define H_POOLED 3     /* pipes in the pool (two descriptors each) */
#define H_DIRTY 4      /* JS: entries in the dirty list (native resets it to 0) */
#define H_ALLOCS 5     /* relay structures and prepended buffers allocated, not yet freed */
#define H_PIPE_SIZE 6  /* capacity of the engine's pipes in bytes */
#define H_SLOTS 7      /* relay slots in use (open or finished, not yet released by JS) */
#define H_SHAPED_PIPE_SIZE 8 /* capacity asked for the pipes of shaped directions */

/* Event bits, delivered once per loop iteration per relay. */
#define E_DATA0 1   /* shaped direction 0: bytes are sendable again (arrived, or destination drained) */
#define E_DATA1 2
#define E_FIN0 4    /* direction 0 passed its FIN on */
#define E_FIN1 8
#define E_ERROR 16  /* the relay failed: see S_ERRNO / S_ERRSIDE; E_DONE follows in the same mask */
#define E_DONE 32   /* the relay let go of its sockets (both FINs passed on, or a failure) */
#define E_FIRST0 64  /* direction 0 read its first bytes from its source (once; time to first byte) */
#define E_FIRST1 128

typedef struct engine engine_t;

/* Memory shared with JavaScript, freed when its last holder (the engine, an ArrayBuffer) lets go. */
typedef struct shared {
  void *p;
  size_t bytes;
  int refs;
} shared_t;
shared_t *shared_new(size_t bytes);
void shared_release(shared_t *m);
typedef void (*engine_events_cb)(engine_t *e, uint32_t count, void *arg);

typedef struct engine_options {
  uint32_t max_relays;
  uint32_t pipe_size;        /* pipes of unshaped directions; 0: the kernel's default (64 KiB) */
  uint32_t shaped_pipe_size; /* pipes of shaped directions (their queue); 0: the kernel's default */
  uint32_t max_pooled;       /* empty pipes kept for reuse, per kind */
} engine_options;

/* Creates the engine on `loop`, with its shared memory (see engine_state / engine_ints). */
int engine_open(engine_t **out, uv_loop_t *loop, const engine_options *o, engine_events_cb cb, void *arg);
/* The shared memory blocks; a holder besides the engine takes a reference (refs++). */
shared_t *engine_state(engine_t *e);
shared_t *engine_ints(engine_t *e);
/* Closes every relay (plain close) and the pool; the engine is freed once libuv let go of it. */
void engine_close(engine_t *e);

/*
 * Starts a relay over duplicates of `client` and `backend` (the caller's descriptors stay its own).
 * pre[d]/pre_len[d]: bytes to write to direction d's destination before anything else (copied).
 * Returns the relay id (>= 0) or -errno.
 */
int engine_relay(engine_t *e, int client, int backend, const char *pre[2], const size_t pre_len[2],
                 const int shaped[2], const uint32_t limit[2]);
/* Changes a direction's mode and read-ahead bound (limit 0: the pipe's capacity). */
int engine_configure(engine_t *e, uint32_t id, int dir, int shaped, uint32_t limit);
/* Moves what JS granted to every direction on the dirty list. */
void engine_commit(engine_t *e);
/* Ends a relay gracefully: reads no more, writes what waits (a shaped direction: as granted),
 * then a FIN each way; E_DONE follows. */
int engine_end(engine_t *e, uint32_t id);
/* Lets go of a relay: closes its sockets (with an RST when `reset`) and frees its slot. */
int engine_release(engine_t *e, uint32_t id, int reset);

#endif
