/*
 * tr_avg_pool_s8.c - average pooling: input [1, H, W, C], filter dims {1, KH, KW, 1}, output
 * [1, OH, OW, C]. The mean is over valid (non-padded) taps only, rounded half away from zero:
 *   avg = (sum > 0 ? sum + cnt / 2 : sum - cnt / 2) / cnt   (C truncating division; 0 if cnt = 0)
 * then out = clamp(avg, activation.min, activation.max).
 * DSP path: four channels at a time with SXTAB16 (int16 lanes; used while cnt <= 256 so the
 * lane sums cannot wrap).
 */
#include "tr_nn_support.h"

static inline int8_t tr_avg_out(int32_t sum, int32_t cnt, int32_t lo, int32_t hi)
{
    const int32_t avg = cnt == 0 ? 0 : (sum > 0 ? sum + cnt / 2 : sum - cnt / 2) / cnt;
    return (int8_t)tr_clamp(avg, lo, hi);
}

tr_nn_status tr_avg_pool_s8(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                            const int8_t *input_data, const tr_nn_dims *filter_dims,
                            const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t lo = pool_params->activation.min;
    const int32_t hi = pool_params->activation.max;
    if (output_dims->c != c || k_h < 1 || k_w < 1 || pool_params->stride.h < 1 || pool_params->stride.w < 1) {
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
            int8_t *out = output_data + (oy * output_dims->w + ox) * c;
            int32_t ch = 0;
#if TR_NN_USE_DSP
            if (cnt <= 256) {
                for (; ch + 4 <= c; ch += 4) {
                    int32_t s02 = 0;
                    int32_t s13 = 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const uint32_t v = tr_load_u32(input_data + ((y0 + ky) * in_w + x0 + kx) * c + ch);
                            s02 = __sxtab16(s02, (int32_t)v);
                            s13 = __sxtab16(s13, (int32_t)tr_ror(v, 8u));
                        }
                    }
                    out[ch] = tr_avg_out((int16_t)s02, cnt, lo, hi);
                    out[ch + 1] = tr_avg_out((int16_t)s13, cnt, lo, hi);
                    out[ch + 2] = tr_avg_out((int16_t)((uint32_t)s02 >> 16), cnt, lo, hi);
                    out[ch + 3] = tr_avg_out((int16_t)((uint32_t)s13 >> 16), cnt, lo, hi);
                }
            }
#endif
            for (; ch < c; ++ch) {
                int32_t sum = 0;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        sum += input_data[((y0 + ky) * in_w + x0 + kx) * c + ch];
                    }
                }
                out[ch] = tr_avg_out(sum, cnt, lo, hi);
            }
        }
    }
    return TR_NN_SUCCESS;
}
