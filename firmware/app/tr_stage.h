/*
 * tr_stage.h - the device's input staging buffer (PROTOCOL.md, "Tensors larger than a frame").
 *
 * Pure C11, no board dependencies: compiled for the device, for host tests and for the libFuzzer harness.
 *
 * An input reaches the device as chunks written at byte offsets (LOAD requests, and the chunk every
 * INFER / PROFILE / DUMP carries in its input section). Before a request runs the model, the staged
 * bytes must match the CRC-32 the request states for the whole input: a chunk lost in transit, or a
 * device reset that wiped the buffer, is refused (TR_PROTO_ERR_INPUT) instead of giving a wrong answer.
 *
 * Input section layout (little endian): u32 crc32 of the whole input, u32 offset, then the chunk.
 */
#ifndef TR_STAGE_H
#define TR_STAGE_H

#include <stdint.h>

#define TR_STAGE_SECTION_HEADER_BYTES 8u /* u32 crc32, u32 offset */

typedef struct {
    uint8_t *buf;
    uint32_t size; /* bytes of the whole input */
} tr_stage;

/* Copies `n` bytes to offset `offset`. Returns 0, or TR_PROTO_ERR_RANGE (nothing written) when any
 * byte would fall outside the buffer. */
uint8_t tr_stage_write(tr_stage *s, uint32_t offset, const uint8_t *data, uint32_t n);

/* Applies an input section of `len` bytes: writes its chunk, then checks the whole staged input
 * against its crc32. Returns 0, TR_PROTO_ERR_LENGTH (shorter than its header), TR_PROTO_ERR_RANGE
 * (chunk outside the input) or TR_PROTO_ERR_INPUT (the staged input is not the one stated). */
uint8_t tr_stage_section(tr_stage *s, const uint8_t *section, uint32_t len);

#endif /* TR_STAGE_H */
