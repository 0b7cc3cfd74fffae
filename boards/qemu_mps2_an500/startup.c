/*
 * startup.c - vector table and reset for QEMU mps2-an500 (Cortex-M7, ARM AN500).
 * Reset: enable the FPU first (C code may use VFP registers), copy .data, .tr_fast_data and
 * .tr_fast_text from their load images, zero .bss, then main(). The model arena is NOLOAD and
 * not cleared: the generated model writes every tensor before reading it.
 */
#include <stdint.h>
#include <string.h>

extern uint32_t __tr_stack_top;
extern uint8_t __tr_data_start, __tr_data_end, __tr_data_load;
extern uint8_t __tr_fast_data_start, __tr_fast_data_end, __tr_fast_data_load;
extern uint8_t __tr_fast_text_start, __tr_fast_text_end, __tr_fast_text_load;
extern uint8_t __tr_bss_start, __tr_bss_end;

int main(void);
void Reset_Handler(void);
void tr_reset_c(void);
void Default_Handler(void);
void SysTick_Handler(void);
void UART0RX_Handler(void);

/* One vector slot: the initial stack pointer or a handler (a union keeps both ISO C). */
typedef union {
    void (*handler)(void);
    const void *sp;
} tr_vector;

extern const tr_vector tr_vectors[];

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

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
 * may treat a memcpy to a null destination as undefined behaviour (same code on both boards).
 * Start-up speed does not matter. */
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
    SCB_VTOR = (uint32_t)(uintptr_t)&tr_vectors[0];
    copy_section(&__tr_data_start, &__tr_data_end, &__tr_data_load);
    copy_section(&__tr_fast_data_start, &__tr_fast_data_end, &__tr_fast_data_load);
    copy_section(&__tr_fast_text_start, &__tr_fast_text_end, &__tr_fast_text_load);
    if (&__tr_bss_end > &__tr_bss_start) {
        memset(&__tr_bss_start, 0, (size_t)(&__tr_bss_end - &__tr_bss_start));
    }
    __asm volatile("dsb\n isb" ::: "memory");
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}

void Default_Handler(void)
{
    /* An unexpected fault or interrupt: stop here (the host times out and reports it). */
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define AN500_NUM_IRQS 32

#define H(fn) {.handler = fn}
#define D H(Default_Handler)

/* 16 system exceptions + AN500 external interrupts; IRQ 0 = UART0 RX. */
__attribute__((section(".isr_vector"), used)) const tr_vector tr_vectors[16 + AN500_NUM_IRQS] = {
    {.sp = &__tr_stack_top}, H(Reset_Handler), H(NMI_Handler), H(HardFault_Handler),
    H(MemManage_Handler), H(BusFault_Handler), H(UsageFault_Handler), D,
    D, D, D, H(SVC_Handler),
    H(DebugMon_Handler), D, H(PendSV_Handler), H(SysTick_Handler),
    /* IRQ 0..31 */
    H(UART0RX_Handler), D, D, D, D, D, D, D, D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D, D, D, D, D, D, D, D, D,
};
