/*
 * tr_lut_s8.c - elementwise table lookup: out = table[q + 128] over dims (any shape).
 * Pure data movement: one path for every build (a byte gather gains nothing from DSP intrinsics).
 */
#include "tr_nn_support.h"

tr_nn_status tr_lut_s8(const int8_t *table, const tr_nn_dims *dims, const int8_t *input_data,
                       int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0 || table == NULL) {
        return TR_NN_ARG_ERROR;
    }
    for (int32_t i = 0; i < n; ++i) {
        output_data[i] = table[(int32_t)input_data[i] + 128];
    }
    return TR_NN_SUCCESS;
}
