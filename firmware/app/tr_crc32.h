/*
 * tr_crc32.h - CRC-32 (ISO-HDLC, the zlib/Ethernet CRC) for the tinyrobust wire protocol (PROTOCOL.md).
 *
 * Reflected polynomial 0xEDB88320, initial value 0xFFFFFFFF, final xor 0xFFFFFFFF.
 * Check value: crc of the ASCII bytes "123456789" is 0xCBF43926 (Python: zlib.crc32).
 * It guards whole tensors that travel in several frames (an input staged chunk by chunk, an output
 * read window by window): each frame has its CRC-16, this one proves the pieces add up to the whole.
 */
#ifndef TR_CRC32_H
#define TR_CRC32_H

#include <stdint.h>

uint32_t tr_crc32(const uint8_t *data, uint32_t len);

#endif /* TR_CRC32_H */
