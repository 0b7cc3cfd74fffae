/*
 * stm32h743_regs.h - the few STM32H743 and Cortex-M7 registers this board needs, written from
 * RM0433 (STM32H742/743/750/753 reference manual) and the ARMv7-M architecture reference manual.
 * Own minimal definitions: no vendor HAL/CMSIS headers. Names follow the reference manual.
 * Every macro is checked against those manuals' values by tests/firmware/test_stm32h743_registers.py.
 */
#ifndef STM32H743_REGS_H
#define STM32H743_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Cortex-M7 core (ARMv7-M) ---- */
#define SYST_CSR REG32(0xE000E010u) /* SysTick control and status */
#define SYST_RVR REG32(0xE000E014u) /* SysTick reload value */
#define SYST_CVR REG32(0xE000E018u) /* SysTick current value */
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n)) /* interrupt set-enable */
#define NVIC_IPR_BYTE(irq) (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (irq)))
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_CCR REG32(0xE000ED14u) /* configuration and control */
#define SCB_CCR_DC (1u << 16)      /* data cache enable */
#define SCB_CCR_IC (1u << 17)      /* instruction cache enable */
#define SCB_CCSIDR REG32(0xE000ED80u) /* cache size ID (of the level/type chosen in CSSELR) */
#define SCB_CSSELR REG32(0xE000ED84u) /* cache size selection: 0 = L1 data cache */
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICIALLU REG32(0xE000EF50u) /* invalidate all I-cache to PoU */
#define SCB_DCISW REG32(0xE000EF60u)   /* invalidate D-cache line by set/way */
#define CORE_DEMCR REG32(0xE000EDFCu)  /* debug exception and monitor control */
#define CORE_DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u) /* lock access: write 0xC5ACCE55 to unlock on Cortex-M7 */
#define DWT_LAR_KEY 0xC5ACCE55u

/* ---- RCC, reset and clock control (RM0433 section 8), base 0x58024400 ---- */
#define RCC_BASE 0x58024400u
#define RCC_CR REG32(RCC_BASE + 0x000u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MASK (3u << 3)
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_HSEBYP (1u << 18)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR REG32(RCC_BASE + 0x010u)
#define RCC_CFGR_SW_MASK (7u << 0)
#define RCC_CFGR_SW_HSI (0u << 0)
#define RCC_CFGR_SW_PLL1 (3u << 0)
#define RCC_CFGR_SWS_MASK (7u << 3)
#define RCC_CFGR_SWS_HSI (0u << 3)
#define RCC_CFGR_SWS_PLL1 (3u << 3)
#define RCC_D1CFGR REG32(RCC_BASE + 0x018u)  /* HPRE [3:0], D1PPRE [6:4], D1CPRE [11:8] */
#define RCC_D2CFGR REG32(RCC_BASE + 0x01Cu)  /* D2PPRE1 [6:4], D2PPRE2 [10:8] */
#define RCC_D3CFGR REG32(RCC_BASE + 0x020u)  /* D3PPRE [6:4] */
#define RCC_PLLCKSELR REG32(RCC_BASE + 0x028u) /* PLLSRC [1:0], DIVM1 [9:4] */
#define RCC_PLLCKSELR_PLLSRC_HSE 2u
#define RCC_PLLCFGR REG32(RCC_BASE + 0x02Cu)
#define RCC_PLLCFGR_PLL1FRACEN (1u << 0)
#define RCC_PLLCFGR_PLL1VCOSEL (1u << 1) /* 0 = wide VCO 192..960 MHz */
#define RCC_PLLCFGR_PLL1RGE_SHIFT 2      /* 3 = reference 8..16 MHz */
#define RCC_PLLCFGR_DIVP1EN (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN (1u << 17)
#define RCC_PLLCFGR_DIVR1EN (1u << 18)
#define RCC_PLL1DIVR REG32(RCC_BASE + 0x030u) /* DIVN1 [8:0], DIVP1 [15:9], DIVQ1 [22:16], DIVR1 [30:24], all value-1 */
#define RCC_D2CCIP2R REG32(RCC_BASE + 0x054u) /* USART234578SEL [2:0]: 0 = rcc_pclk1 */
#define RCC_AHB4ENR REG32(RCC_BASE + 0x0E0u)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR REG32(RCC_BASE + 0x0E8u)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define RCC_APB4ENR REG32(RCC_BASE + 0x0F4u)
#define RCC_APB4ENR_SYSCFGEN (1u << 1)

/* ---- PWR (RM0433 section 6), base 0x58024800 ---- */
#define PWR_BASE 0x58024800u
#define PWR_CSR1 REG32(PWR_BASE + 0x04u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3 REG32(PWR_BASE + 0x0Cu)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2) /* supply configuration update enable; cleared = locked */
#define PWR_D3CR REG32(PWR_BASE + 0x18u)
#define PWR_D3CR_VOSRDY (1u << 13)
#define PWR_D3CR_VOS_MASK (3u << 14)
#define PWR_D3CR_VOS_SCALE1 (3u << 14)

/* ---- SYSCFG, base 0x58000400 ---- */
#define SYSCFG_BASE 0x58000400u
#define SYSCFG_PWRCR REG32(SYSCFG_BASE + 0x2Cu)
#define SYSCFG_PWRCR_ODEN (1u << 0) /* overdrive: with VOS1 selected gives VOS0 */

/* ---- embedded flash interface, base 0x52002000 ---- */
#define FLASH_ACR REG32(0x52002000u)
#define FLASH_ACR_LATENCY_MASK (0xFu << 0)
#define FLASH_ACR_WRHIGHFREQ_MASK (3u << 4)

/* ---- DBGMCU: silicon revision ---- */
#define DBGMCU_IDCODE REG32(0x5C001000u) /* REV_ID [31:16]: 0x1003 = rev Y, 0x2003 = rev V */
#define DBGMCU_REV_V 0x2003u

/* ---- GPIOD, base 0x58020C00 ---- */
#define GPIOD_BASE 0x58020C00u
#define GPIOD_MODER REG32(GPIOD_BASE + 0x00u)
#define GPIOD_OSPEEDR REG32(GPIOD_BASE + 0x08u)
#define GPIOD_PUPDR REG32(GPIOD_BASE + 0x0Cu)
#define GPIOD_AFRH REG32(GPIOD_BASE + 0x24u) /* pins 8..15, 4 bits each */

/* ---- USART3, base 0x40004800 ---- */
#define USART3_BASE 0x40004800u
#define USART3_CR1 REG32(USART3_BASE + 0x00u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART3_CR2 REG32(USART3_BASE + 0x04u)
#define USART3_CR3 REG32(USART3_BASE + 0x08u)
#define USART_CR3_EIE (1u << 0)
#define USART3_BRR REG32(USART3_BASE + 0x0Cu)
#define USART3_ISR REG32(USART3_BASE + 0x1Cu)
#define USART_ISR_PE (1u << 0)
#define USART_ISR_FE (1u << 1)
#define USART_ISR_NE (1u << 2)
#define USART_ISR_ORE (1u << 3)
#define USART_ISR_RXNE (1u << 5)
#define USART_ISR_TXE (1u << 7)
#define USART3_ICR REG32(USART3_BASE + 0x20u) /* write 1 to clear PE/FE/NE/ORE */
#define USART3_RDR REG32(USART3_BASE + 0x24u)
#define USART3_TDR REG32(USART3_BASE + 0x28u)
#define USART3_PRESC REG32(USART3_BASE + 0x2Cu)
#define USART3_IRQN 39u

#endif /* STM32H743_REGS_H */
