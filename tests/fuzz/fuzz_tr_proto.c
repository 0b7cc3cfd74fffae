/*
 * fuzz_tr_proto.c - libFuzzer harness for the firmware frame parser (firmware/app/tr_proto.c) and the
 * input staging that every parsed frame's payload can reach (firmware/app/tr_stage.c).
 *
 * Build and run (also done by tests/firmware/test_app_protocol.py, `make fuzz`):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *     -I firmware/app tests/fuzz/fuzz_tr_proto.c firmware/app/tr_proto.c firmware/app/tr_crc16.c \
 *     firmware/app/tr_stage.c firmware/app/tr_crc32.c \
 *     -o /tmp/fuzz_tr_proto && /tmp/fuzz_tr_proto -max_total_time=20 -max_len=8300 CORPUS
 * -max_len must exceed 4105 (mode byte + a full 4104-byte frame): libFuzzer's default of 4096 would
 * never produce a full-size frame.
 *
 * Input layout: byte 0 = mode bits, then the byte stream fed to the parser.
 *   bit0: call tr_proto_timeout() whenever a fed byte equals the mode byte (idle timeouts)
 *   bit1: break the feed/poll contract (feed without draining events) every 7th byte
 *   bit2: append a freshly encoded valid frame built from the input and require it to be parsed
 * Checked invariants: buffer indices stay in bounds, every FRAME has a correct CRC and length,
 * payload pointers lie inside the parser buffer, and (bit2) the appended frame is recovered. Every
 * FRAME payload is also applied as an input section to a staging buffer (tr_stage_section): it returns
 * one of its documented codes, and 0 only when the staged bytes have the section's CRC-32.
 * The first full-size frame (4096-byte payload) parsed is reported once on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_crc16.h"
#include "tr_crc32.h"
#include "tr_proto.h"
#include "tr_stage.h"

static tr_proto_parser parser;
static uint8_t frame[TR_PROTO_MAX_FRAME];
static uint8_t staged[64];
static tr_stage stage = {staged, sizeof staged};
static int full_frame_seen;

static void check_staging(const uint8_t *payload, uint32_t len)
{
    const uint8_t rc = tr_stage_section(&stage, payload, len);
    if (rc != 0 && rc != TR_PROTO_ERR_LENGTH && rc != TR_PROTO_ERR_RANGE && rc != TR_PROTO_ERR_INPUT) {
        abort();
    }
    if (rc == 0) {
        const uint32_t crc = (uint32_t)payload[0] | ((uint32_t)payload[1] << 8) | ((uint32_t)payload[2] << 16) |
                             ((uint32_t)payload[3] << 24);
        if (tr_crc32(staged, sizeof staged) != crc) {
            abort();
        }
    }
}

static void check_state(const tr_proto_parser *p)
{
    if (p->start + p->fill > p->wr || p->wr > sizeof p->buf || p->need > TR_PROTO_MAX_FRAME) {
        abort();
    }
}

/* Returns 1 if ev is a frame equal to (type, seq, payload). */
static int check_event(const tr_proto_event *ev, uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len)
{
    check_state(&parser);
    if (ev->kind == TR_PROTO_EV_FRAME) {
        const uint8_t *lo = parser.buf;
        const uint8_t *hi = parser.buf + sizeof parser.buf;
        if (ev->len > TR_PROTO_MAX_PAYLOAD || ev->payload < lo + TR_PROTO_HEADER_BYTES ||
            ev->payload + ev->len + TR_PROTO_CRC_BYTES > hi) {
            abort();
        }
        const uint8_t *f = ev->payload - TR_PROTO_HEADER_BYTES;
        const uint16_t crc = tr_crc16_update(TR_CRC16_INIT, f + 2, 4u + ev->len);
        const uint16_t got = (uint16_t)(ev->payload[ev->len] | (ev->payload[ev->len + 1] << 8));
        if (crc != got || f[0] != TR_PROTO_SOF0 || f[1] != TR_PROTO_SOF1) {
            abort();
        }
        if (ev->len == TR_PROTO_MAX_PAYLOAD && !full_frame_seen) {
            full_frame_seen = 1;
            fprintf(stderr, "tr_proto: full-size frame parsed (%u-byte payload, %u-byte frame)\n",
                    (unsigned)ev->len, (unsigned)TR_PROTO_MAX_FRAME);
        }
        check_staging(ev->payload, ev->len);
        return ev->type == type && ev->seq == seq && ev->len == len && memcmp(ev->payload, payload, len) == 0;
    }
    if (ev->kind == TR_PROTO_EV_ERROR &&
        (ev->error_code != TR_PROTO_ERR_CRC && ev->error_code != TR_PROTO_ERR_OVERSIZE)) {
        abort();
    }
    return 0;
}

static int drain(tr_proto_event ev, uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t len)
{
    int found = 0;
    for (int guard = 0; ev.kind != TR_PROTO_EV_NONE; ++guard) {
        if (guard > (int)TR_PROTO_MAX_FRAME * 2) {
            abort(); /* the parser must always make progress */
        }
        found |= check_event(&ev, type, seq, payload, len);
        ev = tr_proto_poll(&parser);
    }
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const uint8_t mode = data[0];
    const uint8_t *stream = data + 1;
    const size_t n = size - 1;
    tr_proto_init(&parser);
    for (size_t i = 0; i < n; ++i) {
        tr_proto_event ev = tr_proto_feed(&parser, stream[i]);
        if ((mode & 2u) && i % 7u == 3u) {
            check_event(&ev, 0, 0, NULL, 0); /* contract broken on purpose: pending events stay */
            continue;
        }
        drain(ev, 0, 0, NULL, 0);
        if ((mode & 1u) && stream[i] == mode) {
            drain(tr_proto_timeout(&parser), 0, 0, NULL, 0);
        }
    }
    drain(tr_proto_poll(&parser), 0, 0, NULL, 0);
    if (mode & 4u) {
        /* Whatever came before, an idle timeout followed by a valid frame must yield that frame. */
        drain(tr_proto_timeout(&parser), 0, 0, NULL, 0);
        const uint32_t len = (uint32_t)(n < 300 ? n : 300);
        const uint8_t type = n > 0 ? stream[0] : 1;
        const size_t fsize = tr_proto_encode(frame, sizeof frame, type, mode, stream, len);
        if (fsize != len + TR_PROTO_OVERHEAD) {
            abort();
        }
        int found = 0;
        for (size_t i = 0; i < fsize; ++i) {
            found |= drain(tr_proto_feed(&parser, frame[i]), type, mode, stream, len);
        }
        if (!found) {
            abort();
        }
    }
    return 0;
}
