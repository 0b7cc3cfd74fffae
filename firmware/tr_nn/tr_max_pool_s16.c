/*
 * tr_max_pool_s16.c - max pooling on int16 activations (the s16 twin of tr_max_pool_s8): input
 * [1, H, W, C] int16, filter dims {1, KH, KW, 1}, output [1, OH, OW, C] int16. Only valid
 * (non-padded) taps take part; a window with no valid tap yields -32768 before the clamp.
 * out = clamp(max, activation.min, activation.max), the activation range within int16.
 * No arithmetic beyond compares, so nothing can overflow.
 * DSP path: two channels at a time with SSUB16 + SEL (halfword signed max).
 */
#include "tr_nn_support.h"

tr_nn_status tr_max_pool_s16(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
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
            int16_t *out = output_data + (oy * output_dims->w + ox) * c;
            int32_t ch = 0;
#if TR_NN_USE_DSP
            const uint32_t lo2 = ((uint32_t)lo & 0xFFFFu) * 0x00010001u;
            const uint32_t hi2 = ((uint32_t)hi & 0xFFFFu) * 0x00010001u;
            /* the window's first valid tap, and its taps as a row count and length (pointer steps only) */
            const int16_t *const first = input_data + ((y0 + ky0) * in_w + x0 + kx0) * c;
            const int32_t rows = ky1 - ky0;
            const int32_t cols = kx1 - kx0;
            for (; ch + 2 <= c; ch += 2) {
                uint32_t m = 0x80008000u; /* -32768 in both lanes */
                const int16_t *row = first + ch;
                for (int32_t ky = 0; ky < rows; ++ky, row += in_w * c) {
                    const int16_t *tap = row;
                    for (int32_t kx = 0; kx < cols; ++kx, tap += c) {
                        const uint32_t v = tr_load_u32(tap);
                        (void)__ssub16((int32_t)v, (int32_t)m); /* GE lanes where v >= m */
                        m = __sel(v, m);
                    }
                }
                (void)__ssub16((int32_t)m, (int32_t)lo2);
                m = __sel(m, lo2);
                (void)__ssub16((int32_t)hi2, (int32_t)m);
                m = __sel(m, hi2);
                tr_store_u32(out + ch, m);
            }
#endif
            for (; ch < c; ++ch) {
                int32_t m = -32768;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32_t v = input_data[((y0 + ky) * in_w + x0 + kx) * c + ch];
                        m = v > m ? v : m;
                    }
                }
                out[ch] = (int16_t)tr_clamp(m, lo, hi);
            }
        }
    }
    return TR_NN_SUCCESS;
}
