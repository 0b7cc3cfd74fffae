/* tr_crc16.c - bitwise CRC-16/CCITT-FALSE. Frames are at most ~4 KB and the link is a UART, so a
 * table-free loop is fast enough and keeps 512 bytes of flash for the model. */
#include "tr_crc16.h"

uint16_t tr_crc16_update(uint16_t crc, const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int bit = 0; bit < 8; ++bit) {
            if (crc & 0x8000u) {
                crc = (uint16_t)((crc << 1) ^ 0x1021u);
            } else {
                crc = (uint16_t)(crc << 1);
            }
        }
    }
    return crc;
}
