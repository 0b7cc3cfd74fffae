/*
 * tr_lut_s8.c - elementwise table lookup: out = table[q + 128] over dims (any shape).
 * Pure data movement: one path for every build (a byte gather gains nothing from DSP intrinsics); the
 * loop takes four elements per iteration with the table addressed from its middle (mid[q] = table[q + 128]),
 * so each element is one LDRSB, one LDRB and one STRB.
 */
#include "tr_nn_support.h"

tr_nn_status tr_lut_s8(const int8_t *table, const tr_nn_dims *dims, const int8_t *input_data,
                       int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0 || table == NULL) {
        return TR_NN_ARG_ERROR;
    }
    const int8_t *const mid = table + 128;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int8_t q0 = input_data[i];
        const int8_t q1 = input_data[i + 1];
        const int8_t q2 = input_data[i + 2];
        const int8_t q3 = input_data[i + 3];
        output_data[i] = mid[q0];
        output_data[i + 1] = mid[q1];
        output_data[i + 2] = mid[q2];
        output_data[i + 3] = mid[q3];
    }
    for (; i < n; ++i) {
        output_data[i] = mid[input_data[i]];
    }
    return TR_NN_SUCCESS;
}
