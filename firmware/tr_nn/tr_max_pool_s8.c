/*
 * tr_max_pool_s8.c - max pooling: input [1, H, W, C], filter dims {1, KH, KW, 1}, output
 * [1, OH, OW, C]. Only valid (non-padded) taps take part; a window with no valid tap yields
 * -128 before the clamp. out = clamp(max, activation.min, activation.max).
 * DSP path: four channels at a time with SSUB8 + SEL (bytewise signed max).
 */
#include "tr_nn_support.h"

tr_nn_status tr_max_pool_s8(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
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
            int8_t *out = output_data + (oy * output_dims->w + ox) * c;
            int32_t ch = 0;
#if TR_NN_USE_DSP
            const uint32_t lo4 = ((uint32_t)lo & 0xFFu) * 0x01010101u;
            const uint32_t hi4 = ((uint32_t)hi & 0xFFu) * 0x01010101u;
            for (; ch + 4 <= c; ch += 4) {
                uint32_t m = 0x80808080u; /* -128 in every lane */
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const uint32_t v = tr_load_u32(input_data + ((y0 + ky) * in_w + x0 + kx) * c + ch);
                        (void)__ssub8((int32_t)v, (int32_t)m); /* GE lanes where v >= m */
                        m = __sel(v, m);
                    }
                }
                (void)__ssub8((int32_t)m, (int32_t)lo4);
                m = __sel(m, lo4);
                (void)__ssub8((int32_t)hi4, (int32_t)m);
                m = __sel(m, hi4);
                tr_store_u32(out + ch, m);
            }
#endif
            for (; ch < c; ++ch) {
                int32_t m = -128;
                for (int32_t ky = ky0; ky < ky1; ++ky) {
                    for (int32_t kx = kx0; kx < kx1; ++kx) {
                        const int32_t v = input_data[((y0 + ky) * in_w + x0 + kx) * c + ch];
                        m = v > m ? v : m;
                    }
                }
                out[ch] = (int8_t)tr_clamp(m, lo, hi);
            }
        }
    }
    return TR_NN_SUCCESS;
}
