/*
 * tr_board.h - the board API the evaluation firmware needs. Each boards/<name>/ implements it.
 *
 * Build-time facts come from boards/<name>/board.toml through -D flags set by tinyrobust.firmware.crossbuild:
 *   TR_BOARD_NAME       string, the board directory name
 *   TR_COUNTER_KIND     0 = DWT cycles, 1 = emulated instructions (SysTick x scale), 2 = none
 *   TR_COUNTER_SCALE    factor applied to raw counter ticks (1 for DWT, 40 for QEMU SysTick)
 *   TR_CONSOLE_BAUD     console UART baud rate
 */
#ifndef TR_BOARD_H
#define TR_BOARD_H

#include <stdint.h>

#ifndef TR_BOARD_NAME
#error "TR_BOARD_NAME must be defined by the build (board.toml name)"
#endif
#ifndef TR_COUNTER_KIND
#error "TR_COUNTER_KIND must be defined by the build (board.toml [counter])"
#endif
#ifndef TR_COUNTER_SCALE
#define TR_COUNTER_SCALE 1u
#endif
#ifndef TR_CONSOLE_BAUD
#define TR_CONSOLE_BAUD 115200u
#endif

/* Values of tr_board_flags(). */
#define TR_BOARD_FLAG_CLOCK_FALLBACK 0x01u /* the PLL setup timed out; running from the internal RC */

/* Clocks, caches, FPU, console UART with RX interrupt, counter. Called once from main. */
/* Called by tr_crt0.c after .data/.bss are set up, before main(): vector table, caches. */
void tr_board_early_init(void);
void tr_board_init(void);
/* Blocking console output. */
void tr_board_putc(uint8_t c);
void tr_board_write(const uint8_t *data, uint32_t len);
/* Next received byte (0..255) from the RX ring buffer, or -1 when it is empty. */
int32_t tr_board_getc_nonblocking(void);
/* Sleeps until an interrupt may have delivered input (WFI); returns at once if input is pending. */
void tr_board_wait_for_input(void);
/* Monotonic 64-bit counter already multiplied by TR_COUNTER_SCALE (see tr_board_counter_kind). */
uint64_t tr_board_counter_read(void);
/* Like tr_board_counter_read, but first waits for the next raw tick edge (emulated counters), so
 * a measurement starts at a fixed phase and repeats exactly for the same instruction stream. */
uint64_t tr_board_counter_start(void);
/* Milliseconds since init, for the protocol idle reset; approximate on emulators. */
uint32_t tr_board_millis(void);
const char *tr_board_name(void);
uint32_t tr_board_core_clock_hz(void);
uint32_t tr_board_flags(void);
uint8_t tr_board_counter_kind(void);

#endif /* TR_BOARD_H */
