/*
 * tr_concat_s8.c - channel concatenation step: copies input [N, H, W, C_i] into output
 * [N, H, W, C_out] at channel offset channel_offset (0 <= offset, offset + C_i <= C_out).
 * Pure data movement: one path for every build (memcpy per pixel).
 */
#include "tr_nn_support.h"

tr_nn_status tr_concat_s8(int32_t channel_offset, const tr_nn_dims *input_dims, const int8_t *input_data,
                          const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t c_in = input_dims->c;
    const int32_t c_out = output_dims->c;
    if (input_dims->n != output_dims->n || input_dims->h != output_dims->h || input_dims->w != output_dims->w ||
        channel_offset < 0 || channel_offset + c_in > c_out) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t pixels = input_dims->n * input_dims->h * input_dims->w;
    for (int32_t p = 0; p < pixels; ++p) {
        memcpy(output_data + p * c_out + channel_offset, input_data + p * c_in, (size_t)c_in);
    }
    return TR_NN_SUCCESS;
}
