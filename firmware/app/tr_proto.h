/*
 * tr_proto.h - frame parser and encoder for the tinyrobust wire protocol, version 2 (PROTOCOL.md).
 *
 * Pure C11, no board dependencies: the same file is compiled for the device, for host tests and
 * for the libFuzzer harness.
 *
 * Frame: A5 5A | type u8 | seq u8 | len u16 LE (<= TR_PROTO_MAX_PAYLOAD) | payload | crc u16 LE,
 * crc = CRC-16/CCITT-FALSE over type, seq, len and payload.
 *
 * Parser model. All received bytes live in one bounded buffer `buf` (TR_PROTO_MAX_FRAME bytes):
 *   buf[start .. start+fill)        the candidate frame being assembled (starts with A5 when fill > 0)
 *   buf[start+fill .. wr)           bytes received but not yet examined (only after a resync)
 * A resync (bad CRC, oversized length) moves `start` one byte past the bad frame's first sof byte and
 * rescans the bytes already received, so a valid frame hidden behind garbage or inside a bad frame's
 * claimed payload is still found. Nothing is copied while scanning; the buffer is compacted only
 * when a new byte would not fit behind `wr`.
 *
 * Usage contract: after tr_proto_feed() returns an event, call tr_proto_poll() until it returns
 * TR_PROTO_EV_NONE before feeding the next byte (a rescan can yield several events). The payload
 * pointer of a FRAME event stays valid until the next feed/poll/reset. Violating the contract
 * cannot overflow the buffer: a byte that does not fit is dropped and counted in `dropped`.
 */
#ifndef TR_PROTO_H
#define TR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TR_PROTO_VERSION 2u
#define TR_PROTO_SOF0 0xA5u
#define TR_PROTO_SOF1 0x5Au
#define TR_PROTO_MAX_PAYLOAD 4096u
#define TR_PROTO_HEADER_BYTES 6u /* sof(2) type seq len(2) */
#define TR_PROTO_CRC_BYTES 2u
#define TR_PROTO_OVERHEAD (TR_PROTO_HEADER_BYTES + TR_PROTO_CRC_BYTES)
#define TR_PROTO_MAX_FRAME (TR_PROTO_MAX_PAYLOAD + TR_PROTO_OVERHEAD)
/* A partial frame older than this (ms without a byte) is dropped when the board has a timer. */
#define TR_PROTO_IDLE_RESET_MS 500u

/* Request types; the response type is request | TR_PROTO_RESPONSE_FLAG. */
#define TR_PROTO_HELLO 0x01u
#define TR_PROTO_INFER 0x02u
#define TR_PROTO_PROFILE 0x03u
#define TR_PROTO_DUMP 0x04u
#define TR_PROTO_LOAD 0x05u /* a chunk of the input, staged for a later INFER / PROFILE / DUMP */
#define TR_PROTO_READ 0x06u /* a window of the last INFER's output */
#define TR_PROTO_RESPONSE_FLAG 0x80u
#define TR_PROTO_ERROR 0xFFu

/* Error codes carried in an error frame's payload: u8 code, u8 request_type. */
typedef enum {
    TR_PROTO_ERR_CRC = 1,
    TR_PROTO_ERR_OVERSIZE = 2,
    TR_PROTO_ERR_LENGTH = 3,
    TR_PROTO_ERR_UNKNOWN_TYPE = 4,
    TR_PROTO_ERR_LAYER = 5,
    TR_PROTO_ERR_INFERENCE = 6,
    TR_PROTO_ERR_RANGE = 7, /* a chunk or window outside the input / output */
    TR_PROTO_ERR_INPUT = 8, /* the staged input does not match the request's CRC-32 */
} tr_proto_error_code;

typedef enum {
    TR_PROTO_EV_NONE = 0,  /* need more bytes */
    TR_PROTO_EV_FRAME = 1, /* a complete frame with a valid CRC */
    TR_PROTO_EV_ERROR = 2, /* a bad frame: answer with an error frame (code, type, seq below) */
} tr_proto_event_kind;

typedef struct {
    tr_proto_event_kind kind;
    uint8_t type;           /* frame type (FRAME) or the bad frame's type byte (ERROR) */
    uint8_t seq;            /* frame seq, echoed in the answer */
    uint8_t error_code;     /* tr_proto_error_code for ERROR, 0 otherwise */
    uint16_t len;           /* payload length (FRAME) or the claimed length (ERROR) */
    const uint8_t *payload; /* FRAME only: len bytes inside the parser buffer */
} tr_proto_event;

typedef struct {
    uint8_t buf[TR_PROTO_MAX_FRAME];
    uint32_t start;       /* first byte of the candidate frame */
    uint32_t fill;        /* bytes of the candidate frame examined so far */
    uint32_t wr;          /* end of received bytes */
    uint32_t need;        /* full frame size once the header is known, else 0 */
    uint32_t frame_ready; /* the previous event handed out buf[start..start+need) */
    uint32_t draining;    /* idle timeout: rescan everything held, then drop the incomplete tail */
    uint32_t dropped;     /* bytes dropped because the caller broke the feed/poll contract */
} tr_proto_parser;

void tr_proto_init(tr_proto_parser *p);
/* Drops any partial frame and pending bytes (idle timeout). */
void tr_proto_reset(tr_proto_parser *p);
/* Idle timeout (no byte for TR_PROTO_IDLE_RESET_MS while busy): abandons the partial frame,
 * rescans every byte held after its sof for complete frames (so a valid frame swallowed by a
 * truncated one is still served) and drops what stays incomplete. Returns the first event; continue
 * with tr_proto_poll() until NONE like after a feed. */
tr_proto_event tr_proto_timeout(tr_proto_parser *p);
/* Nonzero while a partial frame or unexamined bytes are held. */
int tr_proto_busy(const tr_proto_parser *p);
/* Adds one received byte and scans; returns the first event found. */
tr_proto_event tr_proto_feed(tr_proto_parser *p, uint8_t byte);
/* Continues scanning already received bytes; returns the next event or NONE. */
tr_proto_event tr_proto_poll(tr_proto_parser *p);

/* ---- encoder: streams a frame through a write callback, so the device needs no TX buffer ---- */
typedef void (*tr_proto_write_fn)(const uint8_t *data, uint32_t len, void *user);

typedef struct {
    tr_proto_write_fn write;
    void *user;
    uint16_t crc;
    uint32_t remaining; /* payload bytes still owed */
} tr_proto_writer;

/* Writes the header for a frame of `len` payload bytes (len is clamped to TR_PROTO_MAX_PAYLOAD). */
void tr_proto_writer_begin(tr_proto_writer *w, tr_proto_write_fn write, void *user, uint8_t type,
                           uint8_t seq, uint32_t len);
/* Appends payload bytes; anything beyond the announced length is discarded. */
void tr_proto_writer_put(tr_proto_writer *w, const void *data, uint32_t len);
void tr_proto_writer_put_u16(tr_proto_writer *w, uint16_t v);
void tr_proto_writer_put_u32(tr_proto_writer *w, uint32_t v);
void tr_proto_writer_put_u64(tr_proto_writer *w, uint64_t v);
/* Pads a short payload with zeros (keeping the frame well formed) and writes the CRC.
 * Returns 0, or -1 if the payload had to be padded. */
int tr_proto_writer_end(tr_proto_writer *w);

/* Encodes a whole frame into out[0..cap); returns its size, or 0 if it does not fit or len is
 * larger than TR_PROTO_MAX_PAYLOAD. */
size_t tr_proto_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload,
                       uint32_t len);

#endif /* TR_PROTO_H */
