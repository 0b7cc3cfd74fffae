/*
 * Two models exported with --name net_a and --name net_b, served by the unchanged evaluation app as
 * one: the app's protocol serves one model (tr_model_*), so this test binding presents the pair as a
 * model whose input is net_a's input followed by net_b's, and whose output is net_a's output followed
 * by net_b's. One INFER then runs both models in the same image, and the host checks each half bit
 * for bit against that model's own reference. Simpler and more honest than a protocol field chosen
 * only for a test: nothing in the app or the protocol changes, and each model runs exactly as it would
 * in a user's firmware (its own _run on its own input into its own arena).
 */
#ifndef TR_MODEL_H
#define TR_MODEL_H

#include <stdint.h>

#include "net_a_model.h"
#include "net_b_model.h"

#define TR_MODEL_INPUT_BYTES (NET_A_MODEL_INPUT_BYTES + NET_B_MODEL_INPUT_BYTES)
#define TR_MODEL_OUTPUT_BYTES (NET_A_MODEL_OUTPUT_BYTES + NET_B_MODEL_OUTPUT_BYTES)
#define TR_MODEL_ARENA_BYTES (NET_A_MODEL_ARENA_BYTES + NET_B_MODEL_ARENA_BYTES)
#define TR_MODEL_NUM_LAYERS (NET_A_MODEL_NUM_LAYERS + NET_B_MODEL_NUM_LAYERS)

/* The pair is no single program: HELLO reports net_a's hash. */
#define tr_model_hash net_a_model_hash

typedef void (*tr_model_layer_hook_fn)(int32_t layer, void *user);
void tr_model_set_layer_hook(tr_model_layer_hook_fn hook, void *user);
int32_t tr_model_run_until(const int8_t *input, int32_t last_layer);
int32_t tr_model_run(const int8_t *input, int8_t *output);
const int8_t *tr_model_layer_output(int32_t layer, int32_t *bytes);

#endif /* TR_MODEL_H */
