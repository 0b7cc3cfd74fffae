/*
 * tr_avg_pool_s16.c - average pooling on int16 activations (the s16 twin of tr_avg_pool_s8):
 * input [1, H, W, C] int16, filter dims {1, KH, KW, 1}, output [1, OH, OW, C] int16. The mean is
 * over valid (non-padded) taps only, rounded half away from zero as in tr_avg_pool_s8:
 *   avg = (sum > 0 ? sum + cnt / 2 : sum - cnt / 2) / cnt   (C truncating division; 0 if cnt = 0)
 * then out = clamp(avg, activation.min, activation.max), the activation range within int16.
 * Overflow: |sum| <= 32768 * cnt and |sum +- cnt / 2| < 2^31 for cnt <= KH * KW <= 65535, which
 * the kernel checks (TR_NN_ARG_ERROR beyond).
 * DSP path: two channels per 32-bit load (int32 lane sums: an int16 sum would wrap).
 */
#include "tr_nn_support.h"

/* Largest window: 32768 * 65535 + 32767 < 2^31. */
#define TR_AVG_POOL_S16_MAX_TAPS 65535

static inline int16_t tr_avg_out_s16(int32_t sum, int32_t cnt, int32_t lo, int32_t hi)
{
    const int32_t avg = cnt == 0 ? 0 : (sum > 0 ? sum + cnt / 2 : sum - cnt / 2) / cnt;
    return (int16_t)tr_clamp(avg, lo, hi);
}

tr_nn_status tr_avg_pool_s16(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                             const int16_t *input_data, const tr_nn_dims *filter_dims,
                             const tr_nn_dims *output_dims, int16_t *output_data)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t lo = pool_params->activation.min;
    const int32_t hi = pool_params->activation.max;
    if (output_dims->c != c || k_h < 1 || k_w < 1 || k_h > TR_AVG_POOL_S16_MAX_TAPS / k_w ||
        pool_params->stride.h < 1 || pool_params->stride.w < 1) {
        return TR_NN_ARG_ERROR;
    }
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
        const int32_t y0 = oy * pool_params->stride.h - pool_params->padding.h;
        const int32_t ky0 = y0 < 0 ? -y0 : 0;
        const int32_t ky1 = in_h - y0 < k_h ? in_h - y0 : k_h;
        for (int32_t ox = 0; ox < output_dims->w; ++ox) {
            const int32_t x0 = ox * pool_params->stride.w - pool_params->padding.w;
            const int32_t kx0 = x0 < 0 ? -x0 : 0;
            const int32_t kx1 = in_w - x0 < k_w ? in_w - x0 : k_w;
            const int32_t cnt = (ky1 > ky0 && kx1 > kx0) ? (ky1 - ky0) * (kx1 - kx0) : 0;
            int16_t *out = output_data + (oy * output_dims->w + ox) * c;
            int32_t ch = 0;
#if TR_NN_USE_DSP
            for (; ch + 2 <= c; ch += 2) {
                int32_t s0 = 0;
                int32_t s1 = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const uint32_t v = tr_load_u32(input_data + ((y0 + ky) * in_w + x0 + kx) * c + ch);
                        s0 += (int16_t)v;      /* SXTAH */
                        s1 += (int32_t)v >> 16; /* ADD ..., ASR #16 */
                    }
                }
                tr_store_u32(out + ch, ((uint32_t)(uint16_t)tr_avg_out_s16(s0, cnt, lo, hi)) |
                                           ((uint32_t)(uint16_t)tr_avg_out_s16(s1, cnt, lo, hi) << 16));
            }
#endif
            for (; ch < c; ++ch) {
                int32_t sum = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        sum += input_data[((y0 + ky) * in_w + x0 + kx) * c + ch];
                    }
                }
                out[ch] = tr_avg_out_s16(sum, cnt, lo, hi);
            }
        }
    }
    return TR_NN_SUCCESS;
}
