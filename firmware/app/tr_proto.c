/* tr_proto.c - see tr_proto.h for the frame format and the parser's buffer model. */
#include "tr_proto.h"

#include <string.h>

#include "tr_crc16.h"

void tr_proto_init(tr_proto_parser *p)
{
    p->start = 0;
    p->fill = 0;
    p->wr = 0;
    p->need = 0;
    p->frame_ready = 0;
    p->draining = 0;
    p->dropped = 0;
}

void tr_proto_reset(tr_proto_parser *p)
{
    uint32_t dropped = p->dropped;
    tr_proto_init(p);
    p->dropped = dropped;
}

int tr_proto_busy(const tr_proto_parser *p)
{
    return p->wr != p->start;
}

static tr_proto_event no_event(void)
{
    tr_proto_event ev = {TR_PROTO_EV_NONE, 0, 0, 0, 0, NULL};
    return ev;
}

/* Abandons the candidate frame and rescans from the byte after its first sof byte. */
static void resync(tr_proto_parser *p)
{
    p->start += 1;
    p->fill = 0;
    p->need = 0;
}

static tr_proto_event error_event(tr_proto_parser *p, uint8_t code)
{
    const uint8_t *f = &p->buf[p->start];
    tr_proto_event ev;
    ev.kind = TR_PROTO_EV_ERROR;
    ev.type = f[2];
    ev.seq = f[3];
    ev.error_code = code;
    ev.len = (uint16_t)(f[4] | (f[5] << 8));
    ev.payload = NULL;
    resync(p);
    return ev;
}

/* Examines unexamined bytes until an event or until every received byte has been examined. */
static tr_proto_event scan(tr_proto_parser *p)
{
    if (p->frame_ready) {
        /* The caller is done with the frame handed out last time. */
        p->start += p->need;
        p->fill = 0;
        p->need = 0;
        p->frame_ready = 0;
    }
    for (;;) {
        if (p->start + p->fill >= p->wr) {
            if (p->draining && p->fill > 0) {
                resync(p); /* idle timeout: the candidate can never complete, look inside it */
                continue;
            }
            break;
        }
        const uint8_t b = p->buf[p->start + p->fill];
        if (p->fill == 0) {
            if (b == TR_PROTO_SOF0) {
                p->fill = 1;
            } else {
                p->start += 1;
            }
        } else if (p->fill == 1) {
            if (b == TR_PROTO_SOF1) {
                p->fill = 2;
            } else {
                resync(p); /* re-examines b as a possible first sof byte */
            }
        } else if (p->fill < TR_PROTO_HEADER_BYTES) {
            p->fill += 1;
            if (p->fill == TR_PROTO_HEADER_BYTES) {
                const uint8_t *f = &p->buf[p->start];
                const uint32_t len = (uint32_t)f[4] | ((uint32_t)f[5] << 8);
                if (len > TR_PROTO_MAX_PAYLOAD) {
                    return error_event(p, TR_PROTO_ERR_OVERSIZE);
                }
                p->need = len + TR_PROTO_OVERHEAD;
            }
        } else {
            p->fill += 1;
            if (p->fill == p->need) {
                const uint8_t *f = &p->buf[p->start];
                const uint32_t len = p->need - TR_PROTO_OVERHEAD;
                const uint16_t crc = tr_crc16_update(TR_CRC16_INIT, f + 2, len + 4);
                const uint16_t got = (uint16_t)(f[p->need - 2] | (f[p->need - 1] << 8));
                if (crc != got) {
                    return error_event(p, TR_PROTO_ERR_CRC);
                }
                tr_proto_event ev;
                ev.kind = TR_PROTO_EV_FRAME;
                ev.type = f[2];
                ev.seq = f[3];
                ev.error_code = 0;
                ev.len = (uint16_t)len;
                ev.payload = f + TR_PROTO_HEADER_BYTES;
                p->frame_ready = 1;
                return ev;
            }
        }
    }
    p->draining = 0;
    if (p->start == p->wr) {
        /* Everything consumed: restart at the front so compaction is rarely needed. */
        p->start = 0;
        p->wr = 0;
    }
    return no_event();
}

tr_proto_event tr_proto_feed(tr_proto_parser *p, uint8_t byte)
{
    if (p->frame_ready) {
        /* Release the previous frame first so its bytes can be reclaimed by compaction. */
        p->start += p->need;
        p->fill = 0;
        p->need = 0;
        p->frame_ready = 0;
    }
    if (p->wr == sizeof p->buf && p->start > 0) {
        memmove(p->buf, p->buf + p->start, p->wr - p->start);
        p->wr -= p->start;
        p->start = 0;
    }
    if (p->wr < sizeof p->buf) {
        p->buf[p->wr++] = byte;
    } else {
        p->dropped += 1; /* only reachable when feed is called with events still pending */
    }
    return scan(p);
}

tr_proto_event tr_proto_timeout(tr_proto_parser *p)
{
    p->draining = 1;
    return scan(p);
}

tr_proto_event tr_proto_poll(tr_proto_parser *p)
{
    return scan(p);
}

/* ---- encoder ---- */

static void emit(tr_proto_writer *w, const uint8_t *data, uint32_t len)
{
    w->write(data, len, w->user);
}

void tr_proto_writer_begin(tr_proto_writer *w, tr_proto_write_fn write, void *user, uint8_t type,
                           uint8_t seq, uint32_t len)
{
    if (len > TR_PROTO_MAX_PAYLOAD) {
        len = TR_PROTO_MAX_PAYLOAD;
    }
    w->write = write;
    w->user = user;
    w->remaining = len;
    const uint8_t header[TR_PROTO_HEADER_BYTES] = {
        TR_PROTO_SOF0, TR_PROTO_SOF1, type, seq, (uint8_t)(len & 0xFFu), (uint8_t)(len >> 8),
    };
    w->crc = tr_crc16_update(TR_CRC16_INIT, header + 2, 4);
    emit(w, header, sizeof header);
}

void tr_proto_writer_put(tr_proto_writer *w, const void *data, uint32_t len)
{
    if (len > w->remaining) {
        len = w->remaining;
    }
    if (len == 0) {
        return;
    }
    w->crc = tr_crc16_update(w->crc, (const uint8_t *)data, len);
    w->remaining -= len;
    emit(w, (const uint8_t *)data, len);
}

void tr_proto_writer_put_u16(tr_proto_writer *w, uint16_t v)
{
    const uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    tr_proto_writer_put(w, b, sizeof b);
}

void tr_proto_writer_put_u32(tr_proto_writer *w, uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tr_proto_writer_put(w, b, sizeof b);
}

void tr_proto_writer_put_u64(tr_proto_writer *w, uint64_t v)
{
    tr_proto_writer_put_u32(w, (uint32_t)v);
    tr_proto_writer_put_u32(w, (uint32_t)(v >> 32));
}

int tr_proto_writer_end(tr_proto_writer *w)
{
    const int short_payload = w->remaining != 0;
    static const uint8_t zeros[16] = {0};
    while (w->remaining > 0) {
        tr_proto_writer_put(w, zeros, w->remaining < sizeof zeros ? w->remaining : (uint32_t)sizeof zeros);
    }
    const uint8_t crc[2] = {(uint8_t)(w->crc & 0xFFu), (uint8_t)(w->crc >> 8)};
    emit(w, crc, sizeof crc);
    return short_payload ? -1 : 0;
}

typedef struct {
    uint8_t *out;
    size_t pos;
} buffer_sink;

static void buffer_write(const uint8_t *data, uint32_t len, void *user)
{
    buffer_sink *s = (buffer_sink *)user;
    memcpy(s->out + s->pos, data, len);
    s->pos += len;
}

size_t tr_proto_encode(uint8_t *out, size_t cap, uint8_t type, uint8_t seq, const uint8_t *payload,
                       uint32_t len)
{
    if (len > TR_PROTO_MAX_PAYLOAD || cap < (size_t)len + TR_PROTO_OVERHEAD) {
        return 0;
    }
    buffer_sink sink = {out, 0};
    tr_proto_writer w;
    tr_proto_writer_begin(&w, buffer_write, &sink, type, seq, len);
    tr_proto_writer_put(&w, payload, len);
    (void)tr_proto_writer_end(&w);
    return sink.pos;
}
