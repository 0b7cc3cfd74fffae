/* tr_stage.c - see tr_stage.h. */
#include "tr_stage.h"

#include <string.h>

#include "tr_crc32.h"
#include "tr_proto.h"

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint8_t tr_stage_write(tr_stage *s, uint32_t offset, const uint8_t *data, uint32_t n)
{
    /* Written so that no sum can wrap: offset <= size first, then n against what is left. */
    if (offset > s->size || n > s->size - offset) {
        return TR_PROTO_ERR_RANGE;
    }
    if (n > 0) {
        memcpy(s->buf + offset, data, n);
    }
    return 0;
}

uint8_t tr_stage_section(tr_stage *s, const uint8_t *section, uint32_t len)
{
    if (len < TR_STAGE_SECTION_HEADER_BYTES) {
        return TR_PROTO_ERR_LENGTH;
    }
    const uint32_t crc = read_u32(section);
    const uint32_t offset = read_u32(section + 4);
    const uint8_t rc = tr_stage_write(s, offset, section + TR_STAGE_SECTION_HEADER_BYTES,
                                      len - TR_STAGE_SECTION_HEADER_BYTES);
    if (rc != 0) {
        return rc;
    }
    return tr_crc32(s->buf, s->size) == crc ? 0u : (uint8_t)TR_PROTO_ERR_INPUT;
}
