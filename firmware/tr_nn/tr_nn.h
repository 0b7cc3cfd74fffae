/*
 * tr_nn.h - the tinyrobust kernel library: one function per file, CMSIS-NN style.
 *
 * Argument order everywhere: ctx, params, quant params, then (dims, data) pairs:
 * input, filter, bias, output. Every function returns TR_NN_SUCCESS or TR_NN_ARG_ERROR.
 * Each kernel has a plain-C path and a Cortex-M7 DSP path (__ARM_FEATURE_DSP) in the same
 * function; defining TR_NN_FORCE_REFERENCE selects the plain-C path. Both are bit-exact with
 * the numpy reference (toolchain/tinyrobust/converter/ops/, one module per kernel family).
 *
 * Weight suffixes: _t2 = "t2r16-v1" 2-bit ternary, _t5 = "trit5r20-v1" 1.6-bit ternary,
 * _s8 = "s8r4-v1" int8 (see tr_nn_types.h).
 * Weighted kernels (conv, depthwise, fully connected) accumulate
 * acc = sum(w * x) * 2^bias_shift + bias[o] (bias_shift in their params, in [0, 16]).
 */
#ifndef TR_NN_H
#define TR_NN_H

#include "tr_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- requantisation helpers (tr_nn_support.h holds the inline definitions) ---- */
int32_t tr_requantize(int32_t val, int32_t multiplier, int32_t shift);

/* ---- convolution: input [1, H, W, C_in], filter dims {C_out, KH, KW, C_in},
 *      filter rows per output channel in order [KH][KW][C_in], bias [C_out] int32,
 *      output [1, OH, OW, C_out]. ---- */
int32_t tr_convolve_s8_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s8_t2(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                               const tr_nn_per_channel_quant_params *quant_params,
                               const tr_nn_dims *input_dims, const int8_t *input_data,
                               const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                               const tr_nn_dims *bias_dims, const int32_t *bias_data,
                               const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_convolve_s8_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s8_t5(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                               const tr_nn_per_channel_quant_params *quant_params,
                               const tr_nn_dims *input_dims, const int8_t *input_data,
                               const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                               const tr_nn_dims *bias_dims, const int32_t *bias_data,
                               const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_convolve_s8_s8_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s8_s8(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                               const tr_nn_per_channel_quant_params *quant_params,
                               const tr_nn_dims *input_dims, const int8_t *input_data,
                               const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                               const tr_nn_dims *bias_dims, const int32_t *bias_data,
                               const tr_nn_dims *output_dims, int8_t *output_data);
/* int16 activations in and out (any zero point), the same packed rows */
int32_t tr_convolve_s16_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s16_t2(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                                const tr_nn_per_channel_quant_params *quant_params,
                                const tr_nn_dims *input_dims, const int16_t *input_data,
                                const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_convolve_s16_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s16_t5(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                                const tr_nn_per_channel_quant_params *quant_params,
                                const tr_nn_dims *input_dims, const int16_t *input_data,
                                const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_convolve_s16_s8_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_convolve_s16_s8(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                                const tr_nn_per_channel_quant_params *quant_params,
                                const tr_nn_dims *input_dims, const int16_t *input_data,
                                const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                const tr_nn_dims *output_dims, int16_t *output_data);

/* ---- depthwise convolution: input [1, H, W, C_in], filter dims {1, KH, KW, C_out}
 *      with C_out = C_in * ch_mult, filter rows per tap (KH*KW rows) each holding C_out
 *      weights, bias [C_out], output [1, OH, OW, C_out]. ---- */
int32_t tr_depthwise_conv_s8_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s8_t2(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                     const tr_nn_per_channel_quant_params *quant_params,
                                     const tr_nn_dims *input_dims, const int8_t *input_data,
                                     const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                     const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                     const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_depthwise_conv_s8_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s8_t5(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                     const tr_nn_per_channel_quant_params *quant_params,
                                     const tr_nn_dims *input_dims, const int8_t *input_data,
                                     const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                     const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                     const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_depthwise_conv_s8_s8_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s8_s8(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                     const tr_nn_per_channel_quant_params *quant_params,
                                     const tr_nn_dims *input_dims, const int8_t *input_data,
                                     const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                     const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                     const tr_nn_dims *output_dims, int8_t *output_data);

/* The same with int16 activations in and out (any zero point). */
int32_t tr_depthwise_conv_s16_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s16_t2(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int16_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_depthwise_conv_s16_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s16_t5(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int16_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_depthwise_conv_s16_s8_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims);
tr_nn_status tr_depthwise_conv_s16_s8(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int16_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int16_t *output_data);

/* ---- fully connected: input {1, 1, 1, C_in}, filter dims {C_out, 1, 1, C_in}, one row per
 *      output channel, bias [C_out], output {1, 1, 1, C_out}. ---- */
int32_t tr_fully_connected_s8_t2_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s8_t2(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int8_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_fully_connected_s8_t5_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s8_t5(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int8_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int8_t *output_data);
int32_t tr_fully_connected_s8_s8_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s8_s8(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int8_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int8_t *output_data);
/* The same with int16 activations in and out (any zero point; weights packed as above). */
int32_t tr_fully_connected_s16_t2_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s16_t2(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                       const tr_nn_per_channel_quant_params *quant_params,
                                       const tr_nn_dims *input_dims, const int16_t *input_data,
                                       const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                       const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                       const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_fully_connected_s16_t5_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s16_t5(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                       const tr_nn_per_channel_quant_params *quant_params,
                                       const tr_nn_dims *input_dims, const int16_t *input_data,
                                       const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                       const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                       const tr_nn_dims *output_dims, int16_t *output_data);
int32_t tr_fully_connected_s16_s8_get_buffer_size(const tr_nn_dims *filter_dims);
tr_nn_status tr_fully_connected_s16_s8(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                       const tr_nn_per_channel_quant_params *quant_params,
                                       const tr_nn_dims *input_dims, const int16_t *input_data,
                                       const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                       const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                       const tr_nn_dims *output_dims, int16_t *output_data);

/* ---- elementwise and data movement ---- */
tr_nn_status tr_add_s8(const tr_nn_add_params *add_params, const tr_nn_dims *dims,
                       const int8_t *input_1_data, const int8_t *input_2_data, int8_t *output_data);
/* The same on int16 tensors (left_shift 15 from the lowering: see tr_add_s16.c). */
tr_nn_status tr_add_s16(const tr_nn_add_params *add_params, const tr_nn_dims *dims,
                        const int16_t *input_1_data, const int16_t *input_2_data, int16_t *output_data);
/* Elementwise product, offsets and one requantisation as documented at tr_nn_mul_params. */
tr_nn_status tr_mul_s8(const tr_nn_mul_params *mul_params, const tr_nn_dims *dims, const int8_t *input_1_data,
                       const int8_t *input_2_data, int8_t *output_data);
tr_nn_status tr_requantize_s8(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                              const int8_t *input_data, int8_t *output_data);
/* The same requantisation between widths: int8 -> int16 (widening), int16 -> int8 (narrowing), and
 * int16 -> int16 (an activation inside an int16 region). */
tr_nn_status tr_requantize_s8_s16(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                                  const int8_t *input_data, int16_t *output_data);
tr_nn_status tr_requantize_s16_s8(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                                  const int16_t *input_data, int8_t *output_data);
tr_nn_status tr_requantize_s16(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                               const int16_t *input_data, int16_t *output_data);
/* 256-entry table indexed by (q + 128). */
tr_nn_status tr_lut_s8(const int8_t *table, const tr_nn_dims *dims, const int8_t *input_data,
                       int8_t *output_data);
/* Concatenation along channels: copies input [1, H, W, C_i] into output [1, H, W, C_out] at
 * channel offset `channel_offset`. Grids must already agree (the lowering inserts requantize). */
tr_nn_status tr_concat_s8(int32_t channel_offset, const tr_nn_dims *input_dims, const int8_t *input_data,
                          const tr_nn_dims *output_dims, int8_t *output_data);
/* Pooling: filter dims {1, KH, KW, 1}. Average rounds half away from zero over valid taps. */
tr_nn_status tr_max_pool_s8(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                            const int8_t *input_data, const tr_nn_dims *filter_dims,
                            const tr_nn_dims *output_dims, int8_t *output_data);
tr_nn_status tr_avg_pool_s8(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                            const int8_t *input_data, const tr_nn_dims *filter_dims,
                            const tr_nn_dims *output_dims, int8_t *output_data);
tr_nn_status tr_max_pool_s16(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                             const int16_t *input_data, const tr_nn_dims *filter_dims,
                             const tr_nn_dims *output_dims, int16_t *output_data);
tr_nn_status tr_avg_pool_s16(const tr_nn_pool_params *pool_params, const tr_nn_dims *input_dims,
                             const int16_t *input_data, const tr_nn_dims *filter_dims,
                             const tr_nn_dims *output_dims, int16_t *output_data);
tr_nn_status tr_pad_s8(const tr_nn_pad_params *pad_params, const tr_nn_dims *input_dims,
                       const int8_t *input_data, const tr_nn_dims *output_dims, int8_t *output_data);
tr_nn_status tr_pad_s16(const tr_nn_pad_params *pad_params, const tr_nn_dims *input_dims,
                        const int16_t *input_data, const tr_nn_dims *output_dims, int16_t *output_data);

#ifdef __cplusplus
}
#endif

#endif /* TR_NN_H */
