#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tinyctrl's one entry point.
#
#   ./build.sh [build]      build build/PICO_W_TINYCTRL/firmware.uf2 (incremental) and
#                           install the tinyctrl command into .venv
#   ./build.sh next         the same firmware one version newer, for the update tests
#   ./build.sh test [args]  host test suite (tools/run_tests.py)
#   ./build.sh sim CONFIG   run the controller on the host simulator (tools/sim.py)
#   ./build.sh bench [args] benchmarks (tools/bench.py; --sim: simulator latencies only; --fleet [N]: N simulated devices)
#   ./build.sh panel [--serve [PORT]]  build the phone panel into build/panel (and serve it)
#
# Dependencies live in ${TINYCTRL_DEPS:-$HOME/.cache/tinyctrl} and are cloned at
# their pinned refs when absent; MPY_DIR, MQTT_AS_DIR and PICOTOOL_DIR (a
# picotool install prefix) point at existing trees instead. Once they are
# present the build needs no network.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$REPO"

BOARD=PICO_W_TINYCTRL
MPY_URL=https://github.com/micropython/micropython.git
MPY_REF=v1.28.0
# One file per submodule the rp2 Pico W build needs, to tell it is checked out.
MPY_SUBMODULE_MARKERS="lib/pico-sdk/CMakeLists.txt lib/tinyusb/src/tusb.h
    lib/cyw43-driver/src/cyw43.h lib/lwip/src/include/lwip/init.h
    lib/mbedtls/include/mbedtls/version.h lib/micropython-lib/README.md"
MQTT_URL=https://github.com/peterhinch/micropython-mqtt.git
MQTT_REF=7b6a11dd7910f7bb8275341fdc24b89ed1dfbc47
PICOTOOL_URL=https://github.com/raspberrypi/picotool.git
PICOTOOL_REF=2.1.1
PFB_URL=https://github.com/JZimnol/pico_fota_bootloader.git
PFB_REF=7348cccea9d381c1e8104b7a723496086424c3dc

DEPS=${TINYCTRL_DEPS:-$HOME/.cache/tinyctrl}
MPY_DIR=${MPY_DIR:-$DEPS/micropython}
MQTT_AS_DIR=${MQTT_AS_DIR:-$DEPS/micropython-mqtt}
PICOTOOL_DIR=${PICOTOOL_DIR:-$DEPS/picotool}
PFB_DIR=${PFB_DIR:-$DEPS/pico_fota_bootloader}
BUILD_DIR=$REPO/build/$BOARD
# The tree the firmware is built from: this checkout, or build/next-tree for `./build.sh next`.
SRC=$REPO
# The interpreter that makes the project's virtual environment: Debian's own by default.
PYTHON=${PYTHON:-python3}
VENV=$REPO/.venv
# The application slot (modules/tinyctrl/update.py has the whole layout).
APP_START=0x1000A000
SLOT_BYTES=$((888 * 1024))
JOBS=$(nproc 2>/dev/null || echo 2)

die() {
    echo "build.sh: $*" >&2
    exit 1
}

say() {
    echo "build.sh: $*"
}

# Install Debian packages as root or through sudo; otherwise say exactly what to run.
install_apt() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "missing build tools; install them with:
    apt-get install $*
or everything the project uses:
    apt-get install \$(cat requirements-apt.txt)"
        sudo=sudo
    fi
    say "installing $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" \
        || die "could not install $*; run: sudo apt-get install $*"
}

check_toolchain() {
    local missing=()
    command -v arm-none-eabi-gcc >/dev/null || missing+=(gcc-arm-none-eabi)
    # newlib: without it the compiler cannot find libc.a and prints the bare name.
    if command -v arm-none-eabi-gcc >/dev/null \
        && [ "$(arm-none-eabi-gcc -print-file-name=libc.a)" = libc.a ]; then
        missing+=(libnewlib-arm-none-eabi)
    fi
    command -v cmake >/dev/null || missing+=(cmake)
    command -v make >/dev/null || missing+=(make)
    command -v git >/dev/null || missing+=(git)
    command -v python3 >/dev/null || missing+=(python3)
    # Host compilers for mpy-cross (C) and picotool (C++).
    command -v c++ >/dev/null || missing+=(g++)
    if [ ${#missing[@]} -gt 0 ]; then
        install_apt "${missing[@]}"
    fi
    local cmake_version
    cmake_version=$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
    if [ "$(printf '%s\n3.19\n' "$cmake_version" | sort -V | head -n 1)" != 3.19 ]; then
        die "cmake $cmake_version is too old, the board (cmake_language DEFER) needs 3.19 or later"
    fi
}

# Clone the pinned MicroPython if absent, then any missing submodule the rp2
# Pico W build needs. Presence is judged by files, not `git submodule status`.
fetch_micropython() {
    if [ ! -f "$MPY_DIR/py/mpconfig.h" ]; then
        say "cloning MicroPython $MPY_REF into $MPY_DIR"
        git -c advice.detachedHead=false clone --depth 1 --branch "$MPY_REF" "$MPY_URL" "$MPY_DIR"
    fi
    local marker sub
    for marker in $MPY_SUBMODULE_MARKERS; do
        [ -f "$MPY_DIR/$marker" ] && continue
        sub=$(echo "$marker" | cut -d/ -f1-2)
        say "fetching $sub"
        git -C "$MPY_DIR" submodule update --init --depth 1 "$sub"
    done
    local minor
    minor=$(sed -n 's/^#define MICROPY_VERSION_MINOR \([0-9]*\)$/\1/p' "$MPY_DIR/py/mpconfig.h")
    [ "$minor" = 28 ] || say "warning: $MPY_DIR is not MicroPython 1.28 (minor version '$minor')"
}

# One pinned commit of a repository into a folder: fetch_commit NAME DIR URL COMMIT.
fetch_commit() {
    say "cloning $1 $4 into $2"
    git init -q "$2"
    git -C "$2" fetch --depth 1 "$3" "$4"
    git -C "$2" checkout -q FETCH_HEAD
}

fetch_mqtt_as() {
    [ -f "$MQTT_AS_DIR/mqtt_as/__init__.py" ] && return
    fetch_commit micropython-mqtt "$MQTT_AS_DIR" "$MQTT_URL" "$MQTT_REF"
}

# pico-sdk signs and converts the image with picotool; build 2.1.1 without USB
# support into a prefix pico-sdk finds, so it never downloads one itself.
fetch_picotool() {
    [ -x "$PICOTOOL_DIR/picotool/picotool" ] \
        && [ -f "$PICOTOOL_DIR/picotool/picotoolConfig.cmake" ] && return
    local src=$DEPS/picotool-src
    if [ ! -f "$src/CMakeLists.txt" ]; then
        say "cloning picotool $PICOTOOL_REF into $src"
        git -c advice.detachedHead=false clone --depth 1 --branch "$PICOTOOL_REF" "$PICOTOOL_URL" "$src"
    fi
    say "building picotool into $PICOTOOL_DIR"
    cmake -S "$src" -B "$DEPS/picotool-build" \
        -DPICO_SDK_PATH="$MPY_DIR/lib/pico-sdk" \
        -DPICOTOOL_NO_LIBUSB=1 -DPICOTOOL_FLAT_INSTALL=1 \
        -DCMAKE_INSTALL_PREFIX="$PICOTOOL_DIR" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$DEPS/picotool-build" --target install -j "$JOBS"
}

fetch_bootloader() {
    [ -f "$PFB_DIR/src/bootloader_app.c" ] && return
    fetch_commit pico_fota_bootloader "$PFB_DIR" "$PFB_URL" "$PFB_REF"
}

# The bootloader (ports/rp2/bootloader): the pinned tree copied and patched under build/, so
# the checkout stays pristine, built with MicroPython's pico-sdk.
build_bootloader() {
    local src=$REPO/build/bootloader-src out=$REPO/build/bootloader
    local patch=$REPO/ports/rp2/bootloader/pico_fota_bootloader.patch
    if [ ! -f "$src/.patched" ] || [ "$patch" -nt "$src/.patched" ]; then
        rm -rf "$src" "$out"
        mkdir -p "$src"
        (cd "$PFB_DIR" && tar --exclude=.git -cf - .) | (cd "$src" && tar -xf -)
        # GIT_CEILING_DIRECTORIES: apply to the copy, not as a change to this repository.
        (cd "$src" && GIT_CEILING_DIRECTORIES="$REPO/build" git apply "$patch") \
            || die "the bootloader patch does not apply to $PFB_DIR"
        touch "$src/.patched"
    fi
    if [ ! -f "$out/Makefile" ]; then
        cmake -S "$REPO/ports/rp2/bootloader" -B "$out" \
            -DPICO_SDK_PATH="$MPY_DIR/lib/pico-sdk" -DPFB_DIR="$src" \
            -DPICOTOOL_FETCH_FROM_GIT_PATH="$PICOTOOL_DIR" -Dpicotool_DIR="$PICOTOOL_DIR/picotool" \
            -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DPICO_BUILD_DOCS=0 >/dev/null
    fi
    make -s -C "$out" -j "$JOBS" pico_fota_bootloader || die "the bootloader did not build"
}

build_firmware() {
    check_toolchain
    mkdir -p "$DEPS"
    fetch_micropython
    fetch_mqtt_as
    fetch_picotool
    fetch_bootloader

    # mpy-cross is built from the MicroPython tree but outside it, keeping the
    # tree pristine; makemanifest.py picks it up from MICROPY_MPYCROSS.
    make -s -C "$MPY_DIR/mpy-cross" BUILD="$REPO/build/mpy-cross" -j "$JOBS"
    export MICROPY_MPYCROSS=$REPO/build/mpy-cross/mpy-cross

    local config=(
        -DMICROPY_BOARD="$BOARD"
        -DMICROPY_BOARD_DIR="$SRC/boards/$BOARD"
        -DMQTT_AS_DIR="$MQTT_AS_DIR"
        -DPICOTOOL_FETCH_FROM_GIT_PATH="$PICOTOOL_DIR"
        -Dpicotool_DIR="$PICOTOOL_DIR/picotool"
        -DFETCHCONTENT_FULLY_DISCONNECTED=ON
        -DPICO_BUILD_DOCS=0
    )
    # Configure once; start afresh when a dependency path changed.
    local stamp="$MPY_DIR ${config[*]}"
    if [ ! -f "$BUILD_DIR/Makefile" ] || [ "$(cat "$BUILD_DIR/.tinyctrl-config" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$BUILD_DIR"
        cmake -S "$MPY_DIR/ports/rp2" -B "$BUILD_DIR" "${config[@]}"
        echo "$stamp" >"$BUILD_DIR/.tinyctrl-config"
    fi
    make -C "$BUILD_DIR" -j "$JOBS" || die "the firmware did not build"
    build_bootloader

    # What a user drags onto the board: the bootloader and the image in one UF2 (in place of
    # pico-sdk's, of the image alone); `tinyctrl update` sends its application slot's pages.
    local uf2=$BUILD_DIR/firmware.uf2
    python3 tools/first_install_uf2.py build/bootloader/pico_fota_bootloader/pico_fota_bootloader.uf2 \
        "$BUILD_DIR/firmware.bin" "$APP_START" "$uf2" || die "could not write $uf2"

    # Flash budget: the linker keeps the image within its slot; this says how close it is.
    local bin_bytes boot_bytes
    bin_bytes=$(stat -c %s "$BUILD_DIR/firmware.bin")
    boot_bytes=$(arm-none-eabi-size build/bootloader/pico_fota_bootloader/pico_fota_bootloader.elf \
        | awk 'NR == 2 { print $1 + $2 }')
    echo
    echo "$uf2: $(stat -c %s "$uf2") bytes (bootloader and image: the first install)"
    echo "flash: firmware $((bin_bytes / 1024)) KiB of its $((SLOT_BYTES / 1024)) KiB slot" \
        "($(((SLOT_BYTES - bin_bytes) / 1024)) KiB spare), bootloader $((boot_bytes / 1024)) KiB of 36 KiB"
}

# An image one version newer than this checkout's (1.1.0 -> 1.1.0.1), built from a copy of the
# tree into build/PICO_W_TINYCTRL-next: what the emulated board's update tests update to.
build_next() {
    local version tree=$REPO/build/next-tree
    version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' modules/tinyctrl/__init__.py).1
    rm -rf "$tree"
    mkdir -p "$tree"
    cp -r boards ports modules manifest.py "$tree/"
    sed -i "s/^__version__ = .*/__version__ = \"$version\"/" "$tree/modules/tinyctrl/__init__.py"
    sed -i "s/version=\"[0-9.]*\"/version=\"$version\"/" "$tree/manifest.py"
    SRC=$tree BUILD_DIR=$REPO/build/$BOARD-next build_firmware
    say "version $version: build/$BOARD-next/firmware.uf2"
}

# Debian 12 and Ubuntu 23.04+ mark their python3 externally managed (PEP 668): pip may not
# install into it. The project's Python packages live in a virtual environment of its own.
ensure_venv() {
    command -v "$PYTHON" >/dev/null || install_apt python3
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the project's Python environment in .venv"
        # Debian ships venv's pip bootstrap (ensurepip) in a package of its own.
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            rm -rf "$VENV"
            install_apt python3-venv
            "$PYTHON" -m venv "$VENV" || die "could not create .venv with $PYTHON"
        fi
    fi
    local stamp=$VENV/.requirements
    if [ ! -f "$stamp" ] || ! cmp -s requirements.txt "$stamp"; then
        say "installing the Python packages in requirements.txt into .venv"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt \
            || die "pip could not install requirements.txt (see above); is PyPI reachable?"
        cp requirements.txt "$stamp"
    fi
    # The `tinyctrl` command (host/) with the device package it checks files with, editable so
    # it runs this checkout; re-installed when pyproject.toml changes.
    local tool=$VENV/.pyproject
    if [ ! -f "$tool" ] || ! cmp -s pyproject.toml "$tool" || [ ! -x "$VENV/bin/tinyctrl" ]; then
        say "installing the tinyctrl command into .venv (pip install -e .)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . \
            || die "pip could not install the tinyctrl command (see above); is PyPI reachable?"
        cp pyproject.toml "$tool"
    fi
    export PATH="$VENV/bin:$PATH"
}

# The phone panel (panel/, README "Phone panel"): npm packages from the lockfile, bundled into
# build/panel; --serve serves it on 127.0.0.1 only (WebCrypto needs https or localhost).
build_panel() {
    command -v npm >/dev/null || install_apt nodejs npm
    local stamp=panel/node_modules/.package-lock.json
    if [ ! -f "$stamp" ] || [ panel/package-lock.json -nt "$stamp" ]; then
        say "installing the panel's npm packages (panel/package-lock.json)"
        (cd panel && npm ci --no-audit --no-fund) || die "npm ci failed (see above); is the npm registry reachable?"
    fi
    (cd panel && node build.mjs "$REPO/build/panel") || die "bundling the panel failed"
    say "panel built into build/panel"
    if [ "${1:-}" = --serve ]; then
        local port=${2:-8080}
        say "serving http://localhost:$port/ (Ctrl-C stops)"
        exec python3 -m http.server --bind 127.0.0.1 --directory "$REPO/build/panel" "$port"
    fi
}

usage() {
    sed -n '5,11p' "$0" | sed 's/^# \{0,1\}//'
}

cmd=${1:-build}
[ $# -gt 0 ] && shift
case $cmd in
    build) build_firmware && ensure_venv && say "the tinyctrl command: .venv/bin/tinyctrl" ;;
    next) build_next ;;
    test)
        # The emulated board's update tests update the firmware to an image one version newer.
        if [ "${1:-}" != --quick ] && [ -f "$BUILD_DIR/firmware.uf2" ] \
            && ! [ "$REPO/build/$BOARD-next/firmware.uf2" -nt "$BUILD_DIR/firmware.uf2" ]; then
            build_next
        fi
        ensure_venv && exec "$VENV/bin/python" tools/run_tests.py "$@" ;;
    sim) ensure_venv && exec "$VENV/bin/python" tools/sim.py "$@" ;;
    bench) ensure_venv && exec "$VENV/bin/python" tools/bench.py "$@" ;;
    panel) build_panel "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
