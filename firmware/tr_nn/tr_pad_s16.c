/*
 * tr_pad_s16.c - explicit spatial padding on int16 activations (the s16 twin of tr_pad_s8):
 * output [1, OH, OW, C] int16 is filled with pad_value (an int16 code: the zero point, 0 on a symmetric
 * int16 grid, -32768 on a non-negative one) and input [1, H, W, C] int16 is copied in at row `top`, column `left`
 * (top + H <= OH, left + W <= OW). Pure data movement, nothing can overflow.
 * The fill writes the pad value as a halfword pattern twice per 32-bit store (then memcpy per input
 * row), which is the fast path on every build, so there is no separate DSP path.
 */
#include "tr_nn_support.h"

tr_nn_status tr_pad_s16(const tr_nn_pad_params *pad_params, const tr_nn_dims *input_dims,
                        const int16_t *input_data, const tr_nn_dims *output_dims, int16_t *output_data)
{
    const int32_t c = input_dims->c;
    const int32_t top = pad_params->top;
    const int32_t left = pad_params->left;
    if (output_dims->c != c || top < 0 || left < 0 || top + input_dims->h > output_dims->h ||
        left + input_dims->w > output_dims->w || pad_params->pad_value < -32768 || pad_params->pad_value > 32767) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t total = output_dims->h * output_dims->w * c;
    const int16_t value = (int16_t)pad_params->pad_value;
    const uint32_t pair = ((uint32_t)(uint16_t)value) * 0x00010001u;
    int32_t i = 0;
    for (; i + 2 <= total; i += 2) {
        tr_store_u32(output_data + i, pair);
    }
    if (i < total) {
        output_data[i] = value;
    }
    const int32_t row = input_dims->w * c;
    for (int32_t y = 0; y < input_dims->h; ++y) {
        memcpy(output_data + ((top + y) * output_dims->w + left) * c, input_data + y * row,
               (size_t)row * sizeof(int16_t));
    }
    return TR_NN_SUCCESS;
}
