/*
 * board.c - tr_board.h for the NUCLEO-H743ZI.
 *
 * Clock: HSE bypass (8 MHz from the ST-LINK MCO) -> PLL1 -> 480 MHz on silicon rev V (VOS0 via
 * SYSCFG ODEN) or 400 MHz on rev Y (VOS1). Buses: AXI/AHB = sys/2, every APB = sys/4 (APB1 feeds
 * USART3). Every wait is bounded; if any step times out the core stays on (or returns to) HSI at
 * 64 MHz with all bus prescalers /1, and TR_BOARD_FLAG_CLOCK_FALLBACK is reported in HELLO.
 * Console: USART3 on PD8 (TX) / PD9 (RX), AF7, RX interrupt into a ring buffer.
 * Counter: DWT CYCCNT (core cycles), extended to 64 bits; SysTick interrupts every 2^24 cycles
 * (35 ms at 480 MHz) so no 32-bit wrap (8.9 s) is ever missed.
 */
#include <stdint.h>

#include "stm32h743_regs.h"
#include "tr_board.h"
#include "tr_ring.h"

#define HSE_HZ 8000000u
#define HSI_HZ 64000000u
/* Loop bound for every hardware wait: >= 10 ms at 64 MHz, far beyond any documented start-up time
 * (HSE bypass and PLL lock take well under 1 ms), short enough to fall back quickly. */
#define WAIT_LIMIT 1000000u

static uint32_t s_core_hz = HSI_HZ;
static uint32_t s_pclk1_hz = HSI_HZ;
static uint32_t s_flags;
static tr_ring s_rx;
static volatile uint32_t s_cyc_high;
static volatile uint32_t s_cyc_last;

void SysTick_Handler(void);
void USART3_IRQHandler(void);

static int wait_bits(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < WAIT_LIMIT; ++i) {
        if ((*reg & mask) == value) {
            return 0;
        }
    }
    return -1;
}

/* Bus prescalers: D1CPRE (sys_ck -> CPU), HPRE (-> AXI/AHB), and the APB dividers of D1/D2/D3.
 * Encodings (RM0433 RCC_D1CFGR/D2CFGR/D3CFGR): HPRE 0b1000 = /2; DxPPRE 0b100 = /2; 0 = /1. */
static void set_prescalers(int divide)
{
    const uint32_t hpre = divide ? 0x8u : 0u;
    const uint32_t ppre = divide ? 0x4u : 0u;
    RCC_D1CFGR = (RCC_D1CFGR & ~((0xFu << 8) | (0x7u << 4) | 0xFu)) | (ppre << 4) | hpre;
    RCC_D2CFGR = (RCC_D2CFGR & ~((0x7u << 8) | (0x7u << 4))) | (ppre << 8) | (ppre << 4);
    RCC_D3CFGR = (RCC_D3CFGR & ~(0x7u << 4)) | (ppre << 4);
}

/* Returns 0 on success; on failure the caller falls back to HSI. */
static int clock_to_pll(void)
{
    const int rev_v = (DBGMCU_IDCODE >> 16) == DBGMCU_REV_V;

    /* Supply: LDO on, bypass off, then lock the supply configuration (SCUEN cleared) and wait
     * until the voltage level is stable. */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_SCUEN | PWR_CR3_BYPASS)) | PWR_CR3_LDOEN;
    if (wait_bits(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY) != 0) {
        return -1;
    }
    /* VOS1 for 400 MHz; rev V adds the overdrive (VOS0) for 480 MHz. */
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS_SCALE1;
    if (wait_bits(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY) != 0) {
        return -1;
    }
    if (rev_v) {
        RCC_APB4ENR |= RCC_APB4ENR_SYSCFGEN;
        (void)RCC_APB4ENR; /* read back: the clock is on before SYSCFG is touched */
        SYSCFG_PWRCR |= SYSCFG_PWRCR_ODEN;
        if (wait_bits(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY) != 0) {
            return -1;
        }
    }

    /* HSE in bypass mode: HSEBYP must be set while HSEON is still 0. */
    RCC_CR &= ~RCC_CR_HSEON;
    RCC_CR |= RCC_CR_HSEBYP;
    RCC_CR |= RCC_CR_HSEON;
    if (wait_bits(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY) != 0) {
        return -1;
    }

    /* PLL1: ref = HSE / M (M = 1, 8 MHz, input range 8..16 MHz), wide VCO = ref * N,
     * P = 2 -> sys_ck. rev V: N = 120, VCO 960 MHz, 480 MHz. rev Y: N = 100, VCO 800 MHz, 400 MHz.
     * Q = 4 and R = 2 are enabled for peripherals that may want them. */
    const uint32_t n = rev_v ? 120u : 100u;
    const uint32_t sys_hz = HSE_HZ * n / 2u;
    RCC_CR &= ~RCC_CR_PLL1ON; /* PLL1 can only be configured while off */
    if (wait_bits(&RCC_CR, RCC_CR_PLL1RDY, 0) != 0) {
        return -1;
    }
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 0x3u)) | (1u << 4) | RCC_PLLCKSELR_PLLSRC_HSE;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(0xFu | RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN | RCC_PLLCFGR_DIVR1EN)) |
                  (3u << RCC_PLLCFGR_PLL1RGE_SHIFT) | RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN |
                  RCC_PLLCFGR_DIVR1EN; /* FRACEN = 0, VCOSEL = 0 (wide) */
    RCC_PLL1DIVR = (n - 1u) | ((2u - 1u) << 9) | ((4u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= RCC_CR_PLL1ON;
    if (wait_bits(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY) != 0) {
        return -1;
    }

    /* Flash wait states for the AXI clock (sys/2) before raising it (RM0433 table 17):
     * 240 MHz at VOS0 -> 4 WS, 200 MHz at VOS1 -> 2 WS; programming delay WRHIGHFREQ = 2. */
    const uint32_t latency = rev_v ? 4u : 2u;
    FLASH_ACR = (FLASH_ACR & ~(FLASH_ACR_LATENCY_MASK | FLASH_ACR_WRHIGHFREQ_MASK)) | latency | (2u << 4);
    if (wait_bits(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, latency) != 0) {
        return -1;
    }

    set_prescalers(1);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    if (wait_bits(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1) != 0) {
        return -1;
    }
    s_core_hz = sys_hz;
    s_pclk1_hz = sys_hz / 4u;
    return 0;
}

static void clock_fallback(void)
{
    /* Back to (or stay on) HSI 64 MHz. Flash latency is left as programmed: at reset it is 7 WS and
     * we only ever raise it, and more wait states are always safe. */
    RCC_CR |= RCC_CR_HSION;
    (void)wait_bits(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_CR &= ~RCC_CR_HSIDIV_MASK; /* HSI / 1 */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_HSI;
    (void)wait_bits(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_HSI);
    set_prescalers(0);
    s_core_hz = HSI_HZ;
    s_pclk1_hz = HSI_HZ;
    s_flags |= TR_BOARD_FLAG_CLOCK_FALLBACK;
}

static void console_init(void)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: clocks are on before the peripherals are written */
    RCC_D2CCIP2R &= ~0x7u; /* USART3 kernel clock = rcc_pclk1 */

    /* PD8 = USART3_TX, PD9 = USART3_RX: alternate function 7, medium speed, pull-up on RX. */
    GPIOD_MODER = (GPIOD_MODER & ~((3u << 16) | (3u << 18))) | (2u << 16) | (2u << 18);
    GPIOD_OSPEEDR = (GPIOD_OSPEEDR & ~((3u << 16) | (3u << 18))) | (1u << 16) | (1u << 18);
    GPIOD_PUPDR = (GPIOD_PUPDR & ~((3u << 16) | (3u << 18))) | (1u << 18);
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | (7u << 0) | (7u << 4);

    USART3_CR1 = 0; /* UE = 0 while configuring; 8N1, oversampling 16, FIFO off */
    USART3_CR2 = 0;
    USART3_CR3 = 0;
    USART3_PRESC = 0;
    USART3_BRR = (s_pclk1_hz + TR_CONSOLE_BAUD / 2u) / TR_CONSOLE_BAUD;
    USART3_ICR = USART_ISR_PE | USART_ISR_FE | USART_ISR_NE | USART_ISR_ORE;
    USART3_CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE | USART_CR1_UE;
    NVIC_IPR_BYTE(USART3_IRQN) = 0x40u;
    NVIC_ISER(USART3_IRQN / 32u) = 1u << (USART3_IRQN % 32u);
}

void USART3_IRQHandler(void)
{
    const uint32_t isr = USART3_ISR;
    const uint32_t errors = isr & (USART_ISR_PE | USART_ISR_FE | USART_ISR_NE | USART_ISR_ORE);
    if (errors) {
        /* A lost or damaged byte: the frame fails its CRC and the host retries. */
        USART3_ICR = errors;
        s_rx.overruns += 1u;
    }
    while (USART3_ISR & USART_ISR_RXNE) {
        tr_ring_push(&s_rx, (uint8_t)USART3_RDR);
    }
}

static void counter_init(void)
{
    CORE_DEMCR |= CORE_DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_KEY;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    s_cyc_last = 0;
    s_cyc_high = 0;
    SYST_CSR = 0;
    SYST_RVR = (1u << 24) - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

/* Must run with interrupts masked (or from the SysTick handler). */
static uint64_t cycles_extend(void)
{
    const uint32_t now = DWT_CYCCNT;
    if (now < s_cyc_last) {
        s_cyc_high += 1u;
    }
    s_cyc_last = now;
    return ((uint64_t)s_cyc_high << 32) | now;
}

void SysTick_Handler(void)
{
    (void)cycles_extend();
}

void tr_board_init(void)
{
    if (clock_to_pll() != 0) {
        clock_fallback();
    }
    counter_init();
    console_init();
    __asm volatile("cpsie i" ::: "memory");
}

void tr_board_putc(uint8_t c)
{
    for (uint32_t i = 0; i < WAIT_LIMIT && !(USART3_ISR & USART_ISR_TXE); ++i) {
    }
    USART3_TDR = c;
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
    /* Busy polling on purpose: in Sleep mode the core clock (and with it DWT CYCCNT) stops, which
     * would stall tr_board_millis; power does not matter for an evaluation firmware. */
}

uint64_t tr_board_counter_read(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    const uint64_t v = cycles_extend();
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return v * (uint64_t)TR_COUNTER_SCALE;
}

uint64_t tr_board_counter_start(void)
{
    return tr_board_counter_read(); /* cycle exact already */
}

uint32_t tr_board_millis(void)
{
    return (uint32_t)(tr_board_counter_read() / (uint64_t)TR_COUNTER_SCALE / (s_core_hz / 1000u));
}

const char *tr_board_name(void)
{
    return TR_BOARD_NAME;
}

uint32_t tr_board_core_clock_hz(void)
{
    return s_core_hz;
}

uint32_t tr_board_flags(void)
{
    return s_flags;
}

uint8_t tr_board_counter_kind(void)
{
    return (uint8_t)TR_COUNTER_KIND;
}
