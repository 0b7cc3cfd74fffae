/*
 * tr_nn_luts.c - decode tables for the DSP paths (declared in tr_nn_support.h).
 *
 * Each uint32 holds two int16 weights, the first in the low half, as __smlad expects. The tables
 * live in .tr_fast_data.* (DTCM on the NUCLEO: single-cycle loads in the inner loops).
 * Entries are built by the preprocessor from the format definitions, so they cannot drift:
 *   t2 code c (2 bits): 01 -> +1, 11 -> -1, else 0;
 *   trit5 digit d of byte b: d = (b / 3^k) % 3, weight = d - 1.
 */
#include "tr_nn_support.h"

#define TR_H(v) ((uint32_t)(uint16_t)(int16_t)(v))
#define TR_T2(c) ((c) == 1 ? 1 : ((c) == 3 ? -1 : 0))
#define TR_T2C(b, i) TR_T2(((b) >> (2 * (i))) & 3)
#define TR_T2E(b) {TR_H(TR_T2C(b, 0)) | (TR_H(TR_T2C(b, 1)) << 16), TR_H(TR_T2C(b, 2)) | (TR_H(TR_T2C(b, 3)) << 16)},
#define TR_T2E4(b) TR_T2E(b) TR_T2E((b) + 1) TR_T2E((b) + 2) TR_T2E((b) + 3)
#define TR_T2E16(b) TR_T2E4(b) TR_T2E4((b) + 4) TR_T2E4((b) + 8) TR_T2E4((b) + 12)
#define TR_T2E64(b) TR_T2E16(b) TR_T2E16((b) + 16) TR_T2E16((b) + 32) TR_T2E16((b) + 48)

const uint32_t tr_t2_pair_lut[256][2] TR_NN_FAST_DATA("tr_t2_pair_lut") __attribute__((aligned(8))) = {TR_T2E64(0) TR_T2E64(64) TR_T2E64(128) TR_T2E64(192)};

#define TR_T5D(b, p) ((((b) / (p)) % 3) - 1)
#define TR_T5W(b, k) TR_H(TR_T5D(b, (k) == 0 ? 1 : (k) == 1 ? 3 : (k) == 2 ? 9 : (k) == 3 ? 27 : 81))
#define TR_T5EV(b) {TR_T5W(b, 0) | (TR_T5W(b, 1) << 16), TR_T5W(b, 2) | (TR_T5W(b, 3) << 16), TR_T5W(b, 4), 0u},
#define TR_T5OD(b) {TR_T5W(b, 0) << 16, TR_T5W(b, 1) | (TR_T5W(b, 2) << 16), TR_T5W(b, 3) | (TR_T5W(b, 4) << 16), 0u},
#define TR_R3(M, b) M(b) M((b) + 1) M((b) + 2)
#define TR_R9(M, b) TR_R3(M, b) TR_R3(M, (b) + 3) TR_R3(M, (b) + 6)
#define TR_R27(M, b) TR_R9(M, b) TR_R9(M, (b) + 9) TR_R9(M, (b) + 18)
#define TR_R81(M, b) TR_R27(M, b) TR_R27(M, (b) + 27) TR_R27(M, (b) + 54)

const uint32_t tr_t5_lut[2][243][4] TR_NN_FAST_DATA("tr_t5_lut") __attribute__((aligned(16))) = {
    {TR_R81(TR_T5EV, 0) TR_R81(TR_T5EV, 81) TR_R81(TR_T5EV, 162)},
    {TR_R81(TR_T5OD, 0) TR_R81(TR_T5OD, 81) TR_R81(TR_T5OD, 162)},
};
