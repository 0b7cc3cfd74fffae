/*
 * tr_crc16.h - CRC-16/CCITT-FALSE for the tinyrobust wire protocol (PROTOCOL.md).
 *
 * Polynomial 0x1021, initial value 0xFFFF, no input/output reflection, no final xor.
 * Check value: crc of the ASCII bytes "123456789" is 0x29B1.
 */
#ifndef TR_CRC16_H
#define TR_CRC16_H

#include <stdint.h>

#define TR_CRC16_INIT 0xFFFFu

/* Continues a running CRC over `len` bytes; start with TR_CRC16_INIT. */
uint16_t tr_crc16_update(uint16_t crc, const uint8_t *data, uint32_t len);

#endif /* TR_CRC16_H */
