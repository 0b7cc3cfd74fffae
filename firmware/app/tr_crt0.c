/*
 * tr_crt0.c - reset for every board: enable the FPU before any C runs (compiled code may use VFP
 * registers), set the stack, copy .data, .tr_fast_data and .tr_fast_text from their load images
 * (symbols from the linker script rendered from board.toml), zero .bss, let the board finish its
 * own early set-up (vector table, caches), then main(). The model arena is NOLOAD and not
 * cleared: the generated model writes every tensor before reading it.
 */
#include <stdint.h>
#include <string.h>

#include "tr_board.h"

extern uint32_t __tr_stack_top;
extern uint8_t __tr_data_start, __tr_data_end, __tr_data_load;
extern uint8_t __tr_fast_data_start, __tr_fast_data_end, __tr_fast_data_load;
extern uint8_t __tr_fast_text_start, __tr_fast_text_end, __tr_fast_text_load;
extern uint8_t __tr_bss_start, __tr_bss_end;

int main(void);
void Reset_Handler(void);
void tr_reset_c(void);

/* Naked so that no compiler-generated code (which may touch VFP registers) runs before CPACR
 * grants access to CP10/CP11. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm volatile(
        "ldr r0, =0xE000ED88\n" /* SCB->CPACR */
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n" /* CP10, CP11 full access */
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "ldr r0, =__tr_stack_top\n"
        "mov sp, r0\n"
        "b tr_reset_c\n");
}

/* A plain volatile loop rather than memcpy: on the NUCLEO, ITCM starts at address 0 and the compiler
 * may treat a memcpy to a null destination as undefined behaviour. Start-up speed does not matter. */
static void copy_section(uint8_t *dst, uint8_t *end, const uint8_t *src)
{
    volatile uint8_t *d = dst;
    const volatile uint8_t *s = src;
    if (dst == src) {
        return;
    }
    while (d < end) {
        *d++ = *s++;
    }
}

__attribute__((noreturn)) void tr_reset_c(void)
{
    copy_section(&__tr_data_start, &__tr_data_end, &__tr_data_load);
    copy_section(&__tr_fast_data_start, &__tr_fast_data_end, &__tr_fast_data_load);
    copy_section(&__tr_fast_text_start, &__tr_fast_text_end, &__tr_fast_text_load);
    if (&__tr_bss_end > &__tr_bss_start) {
        memset(&__tr_bss_start, 0, (size_t)(&__tr_bss_end - &__tr_bss_start));
    }
    __asm volatile("dsb\n isb" ::: "memory");
    tr_board_early_init();
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}
