/*
 * tr_ring.h - single-producer (UART RX interrupt) / single-consumer (main loop) byte ring.
 * Capacity TR_RING_BYTES - 1 (power of two). When full, new bytes are dropped and counted: the
 * frame they belonged to then fails its CRC and the host retries, which is better than blocking
 * in an interrupt.
 */
#ifndef TR_RING_H
#define TR_RING_H

#include <stdint.h>

#define TR_RING_BYTES 2048u
_Static_assert((TR_RING_BYTES & (TR_RING_BYTES - 1u)) == 0, "ring size must be a power of two");

typedef struct {
    volatile uint32_t head; /* written by the producer only */
    volatile uint32_t tail; /* written by the consumer only */
    volatile uint32_t overruns;
    uint8_t data[TR_RING_BYTES];
} tr_ring;

static inline void tr_ring_push(tr_ring *r, uint8_t byte)
{
    const uint32_t head = r->head;
    const uint32_t next = (head + 1u) & (TR_RING_BYTES - 1u);
    if (next == r->tail) {
        r->overruns += 1u;
        return;
    }
    r->data[head] = byte;
    /* The byte must be stored before the consumer can see the new head. */
    __asm volatile("dmb" ::: "memory");
    r->head = next;
}

static inline int32_t tr_ring_pop(tr_ring *r)
{
    const uint32_t tail = r->tail;
    if (tail == r->head) {
        return -1;
    }
    __asm volatile("dmb" ::: "memory");
    const uint8_t byte = r->data[tail];
    r->tail = (tail + 1u) & (TR_RING_BYTES - 1u);
    return byte;
}

static inline int tr_ring_empty(const tr_ring *r)
{
    return r->tail == r->head;
}

#endif /* TR_RING_H */
