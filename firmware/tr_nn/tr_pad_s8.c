/*
 * tr_pad_s8.c - explicit spatial padding: output [1, OH, OW, C] is filled with pad_value and
 * input [1, H, W, C] is copied in at row `top`, column `left` (top + H <= OH, left + W <= OW).
 * Pure data movement: one path for every build (memset + memcpy per row).
 */
#include "tr_nn_support.h"

tr_nn_status tr_pad_s8(const tr_nn_pad_params *pad_params, const tr_nn_dims *input_dims,
                       const int8_t *input_data, const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t c = input_dims->c;
    const int32_t top = pad_params->top;
    const int32_t left = pad_params->left;
    if (output_dims->c != c || top < 0 || left < 0 || top + input_dims->h > output_dims->h ||
        left + input_dims->w > output_dims->w) {
        return TR_NN_ARG_ERROR;
    }
    memset(output_data, pad_params->pad_value, (size_t)(output_dims->h * output_dims->w * c));
    const int32_t row = input_dims->w * c;
    for (int32_t y = 0; y < input_dims->h; ++y) {
        memcpy(output_data + ((top + y) * output_dims->w + left) * c, input_data + y * row, (size_t)row);
    }
    return TR_NN_SUCCESS;
}
