/*
 * A user's firmware around the README's classify() (compiled from the README's own text): three
 * inputs that the test computes the same way in numpy, their classes (2 bits each) leaving as QEMU's
 * exit status through semihosting. 200 means classify() failed.
 */
#include <stdint.h>

#include "kws_model.h"

int classify(const float *x);

#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static void exit_with(uint32_t code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    register uint32_t r0 __asm__("r0") = SYS_EXIT_EXTENDED;
    register uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

int main(void)
{
    static float x[KWS_MODEL_INPUT_BYTES];
    uint32_t code = 0;
    for (uint32_t k = 0; k < 3u; ++k) {
        for (uint32_t i = 0; i < KWS_MODEL_INPUT_BYTES; ++i) {
            x[i] = (float)((int32_t)((i * 53u + k * 29u + 5u) % 256u) - 128) / 20.0f;
        }
        const int c = classify(x);
        if (c < 0 || c > 3) {
            exit_with(200);
        }
        code |= (uint32_t)c << (2u * k);
    }
    exit_with(code);
    return 0;
}
