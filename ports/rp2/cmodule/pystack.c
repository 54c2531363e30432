// SPDX-License-Identifier: MIT
// Python call frames on a stack of their own (py/pystack.c, MICROPY_ENABLE_PYSTACK in the
// board's mpconfigboard.h), set up once at boot through MICROPY_BOARD_EARLY_INIT. Without it
// a frame over 44 bytes (py/objfun.c, VM_MAX_STATE_ON_STACK) is a heap allocation at every
// call, and on a fragmented heap each allocation searches it: a third of the time the board
// spent allocating while it handled a request.

#include "py/runtime.h"

#if MICROPY_ENABLE_PYSTACK

#define PYSTACK_BYTES (8 * 1024)

static mp_obj_t pystack[PYSTACK_BYTES / sizeof(mp_obj_t)];

void tinyctrl_pystack_init(void) {
    mp_pystack_init(pystack, &pystack[MP_ARRAY_SIZE(pystack)]);
}

#endif
