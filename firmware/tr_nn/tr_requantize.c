/* tr_requantize.c - external definition of tr_requantize (body: tr_requantize_inline). */
#include "tr_nn_support.h"

int32_t tr_requantize(int32_t val, int32_t multiplier, int32_t shift)
{
    return tr_requantize_inline(val, multiplier, shift);
}
