/*
 * What engine.c (the engine, its events and its API) and relay.c (moving one relay's bytes)
 * share: the structures and a few functions. Not part of the addon's interface.
 */
#ifndef SHAPER_INTERNAL_H
#define SHAPER_INTERNAL_H

#include "engine.h"


/* At most this many fill/drain rounds per direction per wake-up, so one fast relay cannot starve
 * the others (level-triggered polling brings it back in the next loop iteration). */
#define MAX_ROUNDS 16

/* The copy path's buffer (one per engine): reads of unshaped directions carrying small messages. */
#define COPY_SIZE 16384

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
  unsigned shaped : 1, eof : 1, fin : 1, dst_full : 1, pipe_full : 1, first : 1;
  /* (a shaped direction polls its source only while its queue is empty: relay.c wants_read) */
  /* the last grant took all the queue held: the queue, not the rate, limits this direction (a fast
   * one), so it reads as bytes come, like an unshaped direction, until a grant leaves bytes behind */
  unsigned starved : 1;
  /* an unshaped direction carrying bulk data: its last read filled the copy buffer, so it splices
   * (see relay.c copy_through) until a read finds less than COPY_SIZE */
  unsigned bulk : 1;
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
  char *scratch;      /* COPY_SIZE bytes: the copy path's buffer */
  relay_t **pending; /* relays with undelivered events */
  uint32_t npending;
  pipe_pair *pool[2]; /* empty pipes for unshaped and for shaped directions (sized differently) */
  uint32_t npool[2];
  uv_prepare_t prepare; /* applies grants JS listed but did not commit, before the loop blocks */
  uv_check_t check;     /* delivers the iteration's events in one call */
  uv_idle_t idle;       /* active while events wait: the loop then does not block before on_check */
  int refs;             /* the engine's own open handles + relay structures alive */
  int closing;
};

static inline double *slot(engine_t *e, uint32_t id) { return e->state + (size_t)id * SLOT; }
static inline double *dslot(relay_t *r, int d) { return slot(r->e, r->id) + d * S_DIR; }
static inline double *header(engine_t *e) { return slot(e, e->o.max_relays); }

static inline void count(engine_t *e, int field, double delta) { header(e)[field] += delta; }

/* relay.c */
int relay_pump(relay_t *r, int d, int writable);
void relay_after_io(relay_t *r);
void relay_drop(relay_t *r, int reset);
void relay_unref(relay_t *r);
void relay_give_pipe(engine_t *e, dir_t *x);

/* engine.c */
void engine_emit(relay_t *r, uint32_t bits);
void engine_unref(engine_t *e);

#endif
