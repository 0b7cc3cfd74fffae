/*
 * board.c - tr_board.h for QEMU mps2-an500.
 *
 * Console: CMSDK APB UART0 at 0x40004000 (RX interrupt = IRQ 0) into a ring buffer.
 * Counter: SysTick free running over 2^24 ticks, extended to 64 bits by counting wraps in
 * SysTick_Handler. Under `-icount shift=0` one instruction takes 1 ns of virtual time. Measured on
 * QEMU 7.2 with a 2-instruction spin loop (tests/test_firmware_build.py): with CLKSOURCE = processor
 * clock (25 MHz) one tick = 40 instructions (2,000,000 instructions -> 50,009 ticks); with
 * CLKSOURCE = external reference (1 MHz) one tick = 1000 instructions. We use the processor clock:
 * 25x finer, and it is the factor TR_COUNTER_SCALE = 40 in board.toml. Resolution is one tick.
 */
#include <stdint.h>

#include "tr_board.h"
#include "tr_ring.h"

#ifndef TR_CORE_CLOCK_HZ
#define TR_CORE_CLOCK_HZ 25000000u
#endif

/* ---- CMSDK APB UART (ARM DDI 0479) ---- */
#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_RXOVR (1u << 3)
#define UART_CTRL_TXEN (1u << 0)
#define UART_CTRL_RXEN (1u << 1)
#define UART_CTRL_RXINTEN (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQN 0u

/* ---- Cortex-M7 system registers (ARMv7-M ARM) ---- */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_SHPR3 (*(volatile uint32_t *)0xE000ED20u)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

#define SYSTICK_PERIOD (1u << 24)
/* -icount shift=0: one instruction per virtual nanosecond. */
#define INSTRUCTIONS_PER_MS 1000000u

static tr_ring s_rx;
static volatile uint32_t s_systick_wraps;

void SysTick_Handler(void);
void UART0RX_Handler(void);

void SysTick_Handler(void)
{
    s_systick_wraps += 1u;
}

void UART0RX_Handler(void)
{
    UART_INTCLEAR = UART_INT_RX;
    while (UART_STATE & UART_STATE_RXFULL) {
        tr_ring_push(&s_rx, (uint8_t)UART_DATA);
    }
    if (UART_STATE & UART_STATE_RXOVR) {
        UART_STATE = UART_STATE_RXOVR; /* write 1 to clear */
        s_rx.overruns += 1u;
    }
}

void tr_board_init(void)
{
    UART_BAUDDIV = TR_CORE_CLOCK_HZ / TR_CONSOLE_BAUD; /* must be >= 16 for the UART to run */
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN | UART_CTRL_RXINTEN;
    NVIC_ISER0 = 1u << UART0_RX_IRQN;

    SYST_CSR = 0;
    SYST_RVR = SYSTICK_PERIOD - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
    __asm volatile("cpsie i" ::: "memory");
}

void tr_board_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

void tr_board_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        tr_board_putc(data[i]);
    }
}

int32_t tr_board_getc_nonblocking(void)
{
    return tr_ring_pop(&s_rx);
}

void tr_board_wait_for_input(void)
{
    /* WFI with interrupts masked still wakes on a pending interrupt, so a byte that arrives
     * between the check and the WFI is not slept through. */
    __asm volatile("cpsid i" ::: "memory");
    if (tr_ring_empty(&s_rx)) {
        __asm volatile("wfi");
    }
    __asm volatile("cpsie i" ::: "memory");
}

static uint64_t raw_ticks(void)
{
    __asm volatile("cpsid i" ::: "memory");
    uint64_t wraps = s_systick_wraps;
    uint32_t value = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* Wrapped but the interrupt has not run yet: count it here, re-read after the wrap. */
        wraps += 1u;
        value = SYST_CVR;
    }
    __asm volatile("cpsie i" ::: "memory");
    return (wraps << 24) + (uint64_t)(SYSTICK_PERIOD - 1u - value);
}

uint64_t tr_board_counter_read(void)
{
    return raw_ticks() * (uint64_t)TR_COUNTER_SCALE;
}

uint64_t tr_board_counter_start(void)
{
    /* Spin until the tick changes: the measurement then starts a fixed few instructions after a tick
     * edge instead of at a random phase, so identical runs give identical counts (almost always;
     * the poll loop itself leaves a jitter of a few instructions against a 40-instruction tick). */
    const uint32_t first = SYST_CVR;
    for (uint32_t guard = 0; guard < 1000u && SYST_CVR == first; ++guard) {
    }
    return tr_board_counter_read();
}

uint32_t tr_board_millis(void)
{
    return (uint32_t)(tr_board_counter_read() / INSTRUCTIONS_PER_MS);
}

const char *tr_board_name(void)
{
    return TR_BOARD_NAME;
}

uint32_t tr_board_core_clock_hz(void)
{
    return TR_CORE_CLOCK_HZ;
}

uint32_t tr_board_flags(void)
{
    return 0;
}

uint8_t tr_board_counter_kind(void)
{
    return (uint8_t)TR_COUNTER_KIND;
}
