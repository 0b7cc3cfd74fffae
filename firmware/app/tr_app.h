/*
 * tr_app.h - request dispatch of the evaluation firmware: HELLO, LOAD, INFER, READ, PROFILE, DUMP (PROTOCOL.md).
 * Uses the generated model library (tr_model.h) and the board API (tr_board.h).
 */
#ifndef TR_APP_H
#define TR_APP_H

#include "tr_proto.h"

#ifndef TR_FIRMWARE_VERSION
#define TR_FIRMWARE_VERSION "tinyrobust-fw 0.1.0"
#endif

/* Answers one parser event (FRAME or ERROR) with exactly one frame on the console. */
void tr_app_handle(const tr_proto_event *ev);

/* Serves frames from the console forever. */
void tr_app_serve_forever(void);

#endif /* TR_APP_H */
