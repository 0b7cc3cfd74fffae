/* tr_app.c - request dispatch; one response frame per request, nothing else on the console. */
#include "tr_app.h"

#include <stddef.h>
#include <string.h>

#include "tr_board.h"
#include "tr_model.h"

/* Every response must fit one frame; a model that breaks these cannot be served and must not build. */
_Static_assert(TR_MODEL_INPUT_BYTES + 8 <= TR_PROTO_MAX_PAYLOAD, "input too large for INFER/DUMP frames");
_Static_assert(TR_MODEL_OUTPUT_BYTES + 8 <= TR_PROTO_MAX_PAYLOAD, "output too large for an INFER frame");
_Static_assert(2 + 8 * TR_MODEL_NUM_LAYERS <= TR_PROTO_MAX_PAYLOAD, "too many layers for a PROFILE frame");
_Static_assert(TR_MODEL_NUM_LAYERS > 0 && TR_MODEL_NUM_LAYERS <= 0xFFFF, "layer count must fit u16");

#define DUMP_HEADER_BYTES 8u /* u16 layer, u32 offset, u16 length */
#define DUMP_MAX_WINDOW (TR_PROTO_MAX_PAYLOAD - 4u)

static int8_t s_output[TR_MODEL_OUTPUT_BYTES];
/* Counter value at the hook's layer -1 (index 0) and after each op (index i + 1). */
static uint64_t s_marks[TR_MODEL_NUM_LAYERS + 1];
static uint8_t s_marked[TR_MODEL_NUM_LAYERS + 1];

static void console_write(const uint8_t *data, uint32_t len, void *user)
{
    (void)user;
    tr_board_write(data, len);
}

static void begin(tr_proto_writer *w, uint8_t type, uint8_t seq, uint32_t len)
{
    tr_proto_writer_begin(w, console_write, NULL, type, seq, len);
}

static void send_error(uint8_t seq, uint8_t code, uint8_t request_type)
{
    tr_proto_writer w;
    const uint8_t payload[2] = {code, request_type};
    begin(&w, TR_PROTO_ERROR, seq, sizeof payload);
    tr_proto_writer_put(&w, payload, sizeof payload);
    (void)tr_proto_writer_end(&w);
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void handle_hello(const tr_proto_event *ev)
{
    const char *board = tr_board_name();
    const char *version = TR_FIRMWARE_VERSION;
    const uint32_t board_len = (uint32_t)strlen(board) + 1;
    const uint32_t version_len = (uint32_t)strlen(version) + 1;
    const uint8_t magic[4] = {'T', 'R', 'N', 'N'};
    tr_proto_writer w;
    begin(&w, TR_PROTO_HELLO | TR_PROTO_RESPONSE_FLAG, ev->seq,
          4 + 1 + 1 + 2 + 4 + 4 + 4 + 4 + 32 + 1 + board_len + version_len);
    tr_proto_writer_put(&w, magic, sizeof magic);
    const uint8_t version_kind[2] = {(uint8_t)TR_PROTO_VERSION, tr_board_counter_kind()};
    tr_proto_writer_put(&w, version_kind, sizeof version_kind);
    tr_proto_writer_put_u16(&w, (uint16_t)TR_MODEL_NUM_LAYERS);
    tr_proto_writer_put_u32(&w, (uint32_t)TR_MODEL_INPUT_BYTES);
    tr_proto_writer_put_u32(&w, (uint32_t)TR_MODEL_OUTPUT_BYTES);
    tr_proto_writer_put_u32(&w, (uint32_t)TR_MODEL_ARENA_BYTES);
    tr_proto_writer_put_u32(&w, tr_board_core_clock_hz());
    tr_proto_writer_put(&w, tr_model_hash, 32);
    const uint8_t flags = (uint8_t)tr_board_flags();
    tr_proto_writer_put(&w, &flags, 1);
    tr_proto_writer_put(&w, board, board_len);
    tr_proto_writer_put(&w, version, version_len);
    (void)tr_proto_writer_end(&w);
}

static void handle_infer(const tr_proto_event *ev)
{
    tr_model_set_layer_hook(NULL, NULL); /* no hook overhead inside the measured call */
    const uint64_t t0 = tr_board_counter_start();
    const int32_t rc = tr_model_run((const int8_t *)ev->payload, s_output);
    const uint64_t t1 = tr_board_counter_read();
    if (rc < 0) {
        send_error(ev->seq, TR_PROTO_ERR_INFERENCE, ev->type);
        return;
    }
    tr_proto_writer w;
    begin(&w, TR_PROTO_INFER | TR_PROTO_RESPONSE_FLAG, ev->seq, 8u + TR_MODEL_OUTPUT_BYTES);
    tr_proto_writer_put_u64(&w, t1 - t0);
    tr_proto_writer_put(&w, s_output, TR_MODEL_OUTPUT_BYTES);
    (void)tr_proto_writer_end(&w);
}

static void profile_hook(int32_t layer, void *user)
{
    (void)user;
    const int32_t slot = layer + 1;
    if (slot >= 0 && slot <= TR_MODEL_NUM_LAYERS) {
        s_marks[slot] = tr_board_counter_read();
        s_marked[slot] = 1;
    }
}

static void handle_profile(const tr_proto_event *ev)
{
    memset(s_marks, 0, sizeof s_marks);
    memset(s_marked, 0, sizeof s_marked);
    tr_model_set_layer_hook(profile_hook, NULL);
    (void)tr_board_counter_start(); /* align the first mark to a tick edge */
    const int32_t rc = tr_model_run_until((const int8_t *)ev->payload, TR_MODEL_NUM_LAYERS - 1);
    tr_model_set_layer_hook(NULL, NULL);
    if (rc < 0) {
        send_error(ev->seq, TR_PROTO_ERR_INFERENCE, ev->type);
        return;
    }
    tr_proto_writer w;
    begin(&w, TR_PROTO_PROFILE | TR_PROTO_RESPONSE_FLAG, ev->seq, 2u + 8u * TR_MODEL_NUM_LAYERS);
    tr_proto_writer_put_u16(&w, (uint16_t)TR_MODEL_NUM_LAYERS);
    for (int32_t i = 0; i < TR_MODEL_NUM_LAYERS; ++i) {
        /* An op the hook did not report yields 0 rather than a meaningless difference. */
        const int both = s_marked[i] && s_marked[i + 1] && s_marks[i + 1] >= s_marks[i];
        tr_proto_writer_put_u64(&w, both ? s_marks[i + 1] - s_marks[i] : 0);
    }
    (void)tr_proto_writer_end(&w);
}

static void handle_dump(const tr_proto_event *ev)
{
    const uint8_t *p = ev->payload;
    const uint16_t layer = read_u16(p);
    const uint32_t offset = read_u32(p + 2);
    uint32_t length = read_u16(p + 6);
    if (layer >= TR_MODEL_NUM_LAYERS) {
        send_error(ev->seq, TR_PROTO_ERR_LAYER, ev->type);
        return;
    }
    tr_model_set_layer_hook(NULL, NULL);
    const int32_t rc = tr_model_run_until((const int8_t *)(p + DUMP_HEADER_BYTES), (int32_t)layer);
    int32_t total = 0;
    const int8_t *tensor = (rc < 0) ? NULL : tr_model_layer_output((int32_t)layer, &total);
    if (tensor == NULL || total < 0) {
        send_error(ev->seq, TR_PROTO_ERR_INFERENCE, ev->type);
        return;
    }
    /* Window [offset, offset + length) clipped to the tensor and to one frame. */
    if (offset >= (uint32_t)total) {
        length = 0;
    } else if (length > (uint32_t)total - offset) {
        length = (uint32_t)total - offset;
    }
    if (length > DUMP_MAX_WINDOW) {
        length = DUMP_MAX_WINDOW;
    }
    tr_proto_writer w;
    begin(&w, TR_PROTO_DUMP | TR_PROTO_RESPONSE_FLAG, ev->seq, 4u + length);
    tr_proto_writer_put_u32(&w, (uint32_t)total);
    if (length > 0) {
        tr_proto_writer_put(&w, tensor + offset, length);
    }
    (void)tr_proto_writer_end(&w);
}

void tr_app_handle(const tr_proto_event *ev)
{
    if (ev->kind == TR_PROTO_EV_ERROR) {
        send_error(ev->seq, ev->error_code, ev->type);
        return;
    }
    if (ev->kind != TR_PROTO_EV_FRAME) {
        return;
    }
    uint32_t expected;
    switch (ev->type) {
    case TR_PROTO_HELLO:
        expected = 0;
        break;
    case TR_PROTO_INFER:
    case TR_PROTO_PROFILE:
        expected = TR_MODEL_INPUT_BYTES;
        break;
    case TR_PROTO_DUMP:
        expected = DUMP_HEADER_BYTES + TR_MODEL_INPUT_BYTES;
        break;
    default:
        send_error(ev->seq, TR_PROTO_ERR_UNKNOWN_TYPE, ev->type);
        return;
    }
    if (ev->len != expected) {
        send_error(ev->seq, TR_PROTO_ERR_LENGTH, ev->type);
        return;
    }
    switch (ev->type) {
    case TR_PROTO_HELLO:
        handle_hello(ev);
        break;
    case TR_PROTO_INFER:
        handle_infer(ev);
        break;
    case TR_PROTO_PROFILE:
        handle_profile(ev);
        break;
    default:
        handle_dump(ev);
        break;
    }
}

static tr_proto_parser s_parser;

static void handle_all(tr_proto_event ev)
{
    while (ev.kind != TR_PROTO_EV_NONE) {
        tr_app_handle(&ev);
        ev = tr_proto_poll(&s_parser);
    }
}

void tr_app_serve_forever(void)
{
    tr_proto_init(&s_parser);
    uint32_t last_byte_ms = tr_board_millis();
    for (;;) {
        const int32_t c = tr_board_getc_nonblocking();
        if (c < 0) {
            /* A frame interrupted for too long is abandoned; the bytes after its sof are rescanned so
             * a valid frame it swallowed is still answered. The board's periodic tick wakes us here. */
            if (tr_proto_busy(&s_parser) &&
                (uint32_t)(tr_board_millis() - last_byte_ms) > TR_PROTO_IDLE_RESET_MS) {
                handle_all(tr_proto_timeout(&s_parser));
            }
            tr_board_wait_for_input();
            continue;
        }
        last_byte_ms = tr_board_millis();
        handle_all(tr_proto_feed(&s_parser, (uint8_t)c));
    }
}
