// SPDX-License-Identifier: MIT
// Board and hardware specific configuration
#define MICROPY_HW_BOARD_NAME                   "Raspberry Pi Pico W (tinyctrl)"

// The filesystem is the last 224 KB of flash, after the bootloader, the two image slots and
// the swap's scratch and journal sectors (tinyctrl/update.py has the layout). It holds a
// few KB in service.
#define MICROPY_HW_FLASH_STORAGE_BYTES          (224 * 1024)

// Enable networking.
#define MICROPY_PY_NETWORK 1
#define MICROPY_PY_NETWORK_HOSTNAME_DEFAULT     "tinyctrl"

// CYW43 driver configuration.
#define CYW43_USE_SPI (1)
#define CYW43_LWIP (1)
#define CYW43_GPIO (1)
#define CYW43_SPI_PIO (1)

#define MICROPY_HW_PIN_EXT_COUNT    CYW43_WL_GPIO_COUNT

// If this returns true for a pin then its irq will not be disabled on a soft reboot
int mp_hal_is_pin_reserved(int n);
#define MICROPY_HW_PIN_RESERVED(i) mp_hal_is_pin_reserved(i)

// Call frames on their own stack, not the GC heap (ports/rp2/cmodule/pystack.c).
#define MICROPY_ENABLE_PYSTACK                  (1)
void tinyctrl_pystack_init(void);
#define MICROPY_BOARD_EARLY_INIT()              tinyctrl_pystack_init()

// Features tinyctrl does not use: off, for flash and RAM.
#define MICROPY_PY_THREAD                       (0)
#define MICROPY_PY_WEBREPL                      (0)
#define MICROPY_PY_WEBSOCKET                    (0)
#define MICROPY_PY_OS_DUPTERM                   (0)
#define MICROPY_PY_MACHINE_I2C_TARGET           (0)
#define MICROPY_HW_ENABLE_USB_RUNTIME_DEVICE    (0)
#define MICROPY_PY_FRAMEBUF                     (0)
#define MICROPY_PY_DEFLATE                      (0)
