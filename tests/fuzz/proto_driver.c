/*
 * proto_driver.c - host test driver for tr_proto (used by tests/test_firmware_proto.py).
 * Reads a byte stream on stdin, feeds it byte by byte (draining events as the contract says) and
 * prints one line per event:
 *   FRAME <type> <seq> <len> <payload hex>
 *   ERROR <code> <type> <seq>
 * With argument "timeout", calls tr_proto_timeout() at end of input (an idle gap) and prints
 * "TIMEOUT" before its events. With "encode T S HEX", prints the encoded frame as hex instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_proto.h"

static tr_proto_parser parser;

static void print_events(tr_proto_event ev)
{
    while (ev.kind != TR_PROTO_EV_NONE) {
        if (ev.kind == TR_PROTO_EV_FRAME) {
            printf("FRAME %u %u %u ", ev.type, ev.seq, ev.len);
            for (uint32_t i = 0; i < ev.len; ++i) {
                printf("%02x", ev.payload[i]);
            }
            printf("\n");
        } else {
            printf("ERROR %u %u %u\n", ev.error_code, ev.type, ev.seq);
        }
        ev = tr_proto_poll(&parser);
    }
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "encode") == 0) {
        static uint8_t payload[TR_PROTO_MAX_PAYLOAD + 1], out[TR_PROTO_MAX_FRAME];
        const size_t hex = strlen(argv[4]);
        const uint32_t len = (uint32_t)(hex / 2);
        if (len > sizeof payload) {
            return 2;
        }
        for (uint32_t i = 0; i < len; ++i) {
            unsigned v;
            if (sscanf(argv[4] + 2 * i, "%2x", &v) != 1) {
                return 2;
            }
            payload[i] = (uint8_t)v;
        }
        const size_t n = tr_proto_encode(out, sizeof out, (uint8_t)atoi(argv[2]), (uint8_t)atoi(argv[3]),
                                         payload, len);
        for (size_t i = 0; i < n; ++i) {
            printf("%02x", out[i]);
        }
        printf("\n");
        return n == 0 ? 1 : 0;
    }
    tr_proto_init(&parser);
    int c;
    while ((c = getchar()) != EOF) {
        print_events(tr_proto_feed(&parser, (uint8_t)c));
    }
    if (argc == 2 && strcmp(argv[1], "timeout") == 0) {
        printf("TIMEOUT\n");
        print_events(tr_proto_timeout(&parser));
    }
    printf("BUSY %d\n", tr_proto_busy(&parser));
    return 0;
}
