/*
 * arena.c: a bump allocator for unpacking responses, so gtbench spends its CPU on driving
 * the server rather than on malloc: unpacking a poll response with its history into
 * malloc'd structs, then freeing them, was ~30% of gtbench's CPU (perf), CPU it takes
 * from the server it measures on the same 2 cores.
 *
 * DESIGN
 *   One block, reused: pb_arena() hands out a ProtobufCAllocator that bumps through it;
 *   free is a no-op; pb_arena_reset() forgets everything at once. Allocations that do not
 *   fit go to overflow chunks (malloc), freed at the reset, which then regrows the block to
 *   the size last needed, so the steady state never calls malloc.
 *
 * INVARIANTS
 *   - At most one unpacked message lives at a time: unpack, use, reset (gtbench's callbacks
 *     run one after the other on the loop thread).
 *
 * THREADS: the loop thread only.
 */
#include <stdint.h>
#include <stdlib.h>

#include "gtbench.h"

#define ALIGN 16

typedef struct chunk {
  struct chunk *next;
} chunk_t;

static uint8_t *block;
static size_t cap, used, overflow_bytes;
static chunk_t *overflow;

static void *arena_alloc(void *unused, size_t n) {
  (void)unused;
  n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (used + n <= cap) {
    void *p = block + used;
    used += n;
    return p;
  }
  chunk_t *c = malloc(ALIGN + n); /* header padded to ALIGN keeps the payload aligned */
  if (!c)
    return NULL;
  c->next = overflow;
  overflow = c;
  overflow_bytes += n;
  return (uint8_t *)c + ALIGN;
}

static void arena_free(void *unused, void *p) {
  (void)unused;
  (void)p;
}

static ProtobufCAllocator allocator = {.alloc = arena_alloc, .free = arena_free};

ProtobufCAllocator *pb_arena(void) { return &allocator; }

void pb_arena_reset(void) {
  size_t need = used + overflow_bytes;
  while (overflow) {
    chunk_t *c = overflow;
    overflow = c->next;
    free(c);
  }
  if (overflow_bytes) {
    size_t ncap = cap ? cap : 64 * 1024;
    while (ncap < need)
      ncap *= 2;
    uint8_t *nb = malloc(ncap);
    if (nb) {
      free(block);
      block = nb;
      cap = ncap;
    }
  }
  overflow_bytes = 0;
  used = 0;
}

void pb_arena_fini(void) {
  pb_arena_reset();
  free(block);
  block = NULL;
  cap = 0;
}
