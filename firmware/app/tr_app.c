/* tr_app.c - request dispatch; one response frame per request, nothing else on the console except the
 * HELLO announcement at boot (seq 0), which tells a connected host that the device (re)started. */
#include "tr_app.h"

#include <stddef.h>
#include <string.h>

#include "tr_board.h"
#include "tr_crc32.h"
#include "tr_model.h"
#include "tr_stage.h"

/* Limits a frame still imposes (PROTOCOL.md): PROFILE answers every layer in one frame, and layer
 * indices travel as u16. Inputs and outputs of any size travel in chunks (LOAD, READ).
 * tinyrobust.targets.protocol.servable_problems checks the same limits before an export says it fits. */
_Static_assert(2 + 8 * TR_MODEL_NUM_LAYERS <= TR_PROTO_MAX_PAYLOAD, "too many layers for a PROFILE frame");
_Static_assert(TR_MODEL_NUM_LAYERS > 0 && TR_MODEL_NUM_LAYERS <= 0xFFFF, "layer count must fit u16");
_Static_assert(TR_MODEL_INPUT_BYTES > 0 && TR_MODEL_OUTPUT_BYTES > 0, "a model has an input and an output");

#define DUMP_HEADER_BYTES 8u /* u16 layer, u32 offset, u16 length */
#define WINDOW_HEADER_BYTES 4u /* u32 total before a DUMP / READ window */
#define MAX_WINDOW (TR_PROTO_MAX_PAYLOAD - WINDOW_HEADER_BYTES)
#define INFER_HEADER_BYTES 12u /* u64 count, u32 crc32 of the whole output */
#define INFER_FIRST_WINDOW \
    (TR_MODEL_OUTPUT_BYTES < TR_PROTO_MAX_PAYLOAD - INFER_HEADER_BYTES ? TR_MODEL_OUTPUT_BYTES \
                                                                       : TR_PROTO_MAX_PAYLOAD - INFER_HEADER_BYTES)

/* The input as staged by LOAD and input sections; the model reads it from here, never from a frame. */
static int8_t s_input[TR_MODEL_INPUT_BYTES];
static tr_stage s_stage = {(uint8_t *)s_input, TR_MODEL_INPUT_BYTES};
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

static void send_hello(uint8_t seq)
{
    const char *board = tr_board_name();
    const char *version = TR_FIRMWARE_VERSION;
    const uint32_t board_len = (uint32_t)strlen(board) + 1;
    const uint32_t version_len = (uint32_t)strlen(version) + 1;
    const uint8_t magic[4] = {'T', 'R', 'N', 'N'};
    tr_proto_writer w;
    begin(&w, TR_PROTO_HELLO | TR_PROTO_RESPONSE_FLAG, seq,
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

/* Stages the request's input section; on failure answers with the error and returns nonzero. */
static int stage_or_refuse(const tr_proto_event *ev, const uint8_t *section, uint32_t len)
{
    const uint8_t rc = tr_stage_section(&s_stage, section, len);
    if (rc != 0) {
        send_error(ev->seq, rc, ev->type);
    }
    return rc;
}

static void handle_load(const tr_proto_event *ev)
{
    const uint32_t offset = read_u32(ev->payload);
    const uint32_t n = ev->len - 4u;
    const uint8_t rc = tr_stage_write(&s_stage, offset, ev->payload + 4, n);
    if (rc != 0) {
        send_error(ev->seq, rc, ev->type);
        return;
    }
    tr_proto_writer w;
    begin(&w, TR_PROTO_LOAD | TR_PROTO_RESPONSE_FLAG, ev->seq, 4u);
    tr_proto_writer_put_u32(&w, offset + n);
    (void)tr_proto_writer_end(&w);
}

static void handle_infer(const tr_proto_event *ev)
{
    if (stage_or_refuse(ev, ev->payload, ev->len) != 0) {
        return;
    }
    tr_model_set_layer_hook(NULL, NULL); /* no hook overhead inside the measured call */
    const uint64_t t0 = tr_board_counter_start();
    const int32_t rc = tr_model_run(s_input, s_output);
    const uint64_t t1 = tr_board_counter_read();
    if (rc < 0) {
        send_error(ev->seq, TR_PROTO_ERR_INFERENCE, ev->type);
        return;
    }
    tr_proto_writer w;
    begin(&w, TR_PROTO_INFER | TR_PROTO_RESPONSE_FLAG, ev->seq, INFER_HEADER_BYTES + INFER_FIRST_WINDOW);
    tr_proto_writer_put_u64(&w, t1 - t0);
    tr_proto_writer_put_u32(&w, tr_crc32((const uint8_t *)s_output, TR_MODEL_OUTPUT_BYTES));
    tr_proto_writer_put(&w, s_output, INFER_FIRST_WINDOW);
    (void)tr_proto_writer_end(&w);
}

/* Window [offset, offset + length) clipped to `total` and to one frame; 0 when offset is past the end. */
static uint32_t window_length(uint32_t offset, uint32_t length, uint32_t total)
{
    if (offset >= total) {
        return 0;
    }
    if (length > total - offset) {
        length = total - offset;
    }
    return length > MAX_WINDOW ? MAX_WINDOW : length;
}

static void handle_read(const tr_proto_event *ev)
{
    const uint32_t offset = read_u32(ev->payload);
    const uint32_t total = TR_MODEL_OUTPUT_BYTES;
    if (offset > total) {
        send_error(ev->seq, TR_PROTO_ERR_RANGE, ev->type);
        return;
    }
    const uint32_t length = window_length(offset, read_u16(ev->payload + 4), total);
    tr_proto_writer w;
    begin(&w, TR_PROTO_READ | TR_PROTO_RESPONSE_FLAG, ev->seq, WINDOW_HEADER_BYTES + length);
    tr_proto_writer_put_u32(&w, total);
    tr_proto_writer_put(&w, s_output + offset, length);
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
    if (stage_or_refuse(ev, ev->payload, ev->len) != 0) {
        return;
    }
    memset(s_marks, 0, sizeof s_marks);
    memset(s_marked, 0, sizeof s_marked);
    tr_model_set_layer_hook(profile_hook, NULL);
    (void)tr_board_counter_start(); /* align the first mark to a tick edge */
    const int32_t rc = tr_model_run_until(s_input, TR_MODEL_NUM_LAYERS - 1);
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
    const uint32_t requested = read_u16(p + 6);
    if (layer >= TR_MODEL_NUM_LAYERS) {
        send_error(ev->seq, TR_PROTO_ERR_LAYER, ev->type);
        return;
    }
    if (stage_or_refuse(ev, p + DUMP_HEADER_BYTES, ev->len - DUMP_HEADER_BYTES) != 0) {
        return;
    }
    tr_model_set_layer_hook(NULL, NULL);
    const int32_t rc = tr_model_run_until(s_input, (int32_t)layer);
    int32_t total = 0;
    const int8_t *tensor = (rc < 0) ? NULL : tr_model_layer_output((int32_t)layer, &total);
    if (tensor == NULL || total < 0) {
        send_error(ev->seq, TR_PROTO_ERR_INFERENCE, ev->type);
        return;
    }
    const uint32_t length = window_length(offset, requested, (uint32_t)total);
    tr_proto_writer w;
    begin(&w, TR_PROTO_DUMP | TR_PROTO_RESPONSE_FLAG, ev->seq, WINDOW_HEADER_BYTES + length);
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
    /* Payload length each request needs: exact, or at least its fixed header (then a chunk follows). */
    uint32_t fixed;
    int exact = 0;
    switch (ev->type) {
    case TR_PROTO_HELLO:
        fixed = 0;
        exact = 1;
        break;
    case TR_PROTO_LOAD:
        fixed = 4; /* u32 offset, then the chunk */
        break;
    case TR_PROTO_READ:
        fixed = 6; /* u32 offset, u16 length */
        exact = 1;
        break;
    case TR_PROTO_INFER:
    case TR_PROTO_PROFILE:
        fixed = TR_STAGE_SECTION_HEADER_BYTES;
        break;
    case TR_PROTO_DUMP:
        fixed = DUMP_HEADER_BYTES + TR_STAGE_SECTION_HEADER_BYTES;
        break;
    default:
        send_error(ev->seq, TR_PROTO_ERR_UNKNOWN_TYPE, ev->type);
        return;
    }
    if (exact ? ev->len != fixed : ev->len < fixed) {
        send_error(ev->seq, TR_PROTO_ERR_LENGTH, ev->type);
        return;
    }
    switch (ev->type) {
    case TR_PROTO_HELLO:
        send_hello(ev->seq);
        break;
    case TR_PROTO_LOAD:
        handle_load(ev);
        break;
    case TR_PROTO_READ:
        handle_read(ev);
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
    /* Announce the (re)start: a host mid-run learns that staged input and the last output are gone. */
    send_hello(0);
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
