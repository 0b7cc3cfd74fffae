/* The pair net_a, net_b behind the evaluation app's model API (see tr_model.h): layers 0.. are
 * net_a's, then net_b's; net_b reads the input after net_a's. */
#include "tr_model.h"

static tr_model_layer_hook_fn s_hook;
static void *s_user;

static void hook_a(int32_t layer, void *user)
{
    (void)user;
    s_hook(layer, s_user);
}

static void hook_b(int32_t layer, void *user)
{
    (void)user;
    if (layer >= 0) { /* -1 (before net_b's first op) is the end of net_a's last layer: already reported */
        s_hook(NET_A_MODEL_NUM_LAYERS + layer, s_user);
    }
}

void tr_model_set_layer_hook(tr_model_layer_hook_fn hook, void *user)
{
    s_hook = hook;
    s_user = user;
    net_a_model_set_layer_hook(hook != 0 ? hook_a : 0, 0);
    net_b_model_set_layer_hook(hook != 0 ? hook_b : 0, 0);
}

int32_t tr_model_run_until(const int8_t *input, int32_t last_layer)
{
    if (last_layer < NET_A_MODEL_NUM_LAYERS) {
        return net_a_model_run_until(input, last_layer);
    }
    const int32_t status = net_a_model_run_until(input, NET_A_MODEL_NUM_LAYERS - 1);
    if (status != 0) {
        return status;
    }
    return net_b_model_run_until(input + NET_A_MODEL_INPUT_BYTES, last_layer - NET_A_MODEL_NUM_LAYERS);
}

int32_t tr_model_run(const int8_t *input, int8_t *output)
{
    const int32_t status = net_a_model_run(input, output);
    if (status != 0) {
        return status;
    }
    return net_b_model_run(input + NET_A_MODEL_INPUT_BYTES, output + NET_A_MODEL_OUTPUT_BYTES);
}

const int8_t *tr_model_layer_output(int32_t layer, int32_t *bytes)
{
    if (layer < NET_A_MODEL_NUM_LAYERS) {
        return net_a_model_layer_output(layer, bytes);
    }
    return net_b_model_layer_output(layer - NET_A_MODEL_NUM_LAYERS, bytes);
}
