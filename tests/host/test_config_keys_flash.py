# SPDX-License-Identifier: MIT
"""The `tinyctrl` commands that need no broker: config init / check / import, key new /
show / code (the QR code decoded back with zxing-cpp), flash onto a folder that looks like the
Pico's BOOTSEL drive, and every bad input as one line and a non-zero exit."""

import json
import os
import stat

import pytest
from hostcli import Terminal, one_line_error, run
from seed_configs import SEED_DICT, SEED_SET
from oracle import totp_now

from tinyctrl import config as device_config
from tinyctrl import totp

INIT = [
    "--ssid",
    "MyWifi",
    "--wifi-password",
    "wifi-secret-pw",
    "--server",
    "broker.example",
    "--topic",
    "home/garage",
    "--relay",
    "16,17",
    "--momentary",
    "18:2,19",
    "--contact",
    "0,1",
    "--notify",
    "0,16",
]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def load(path):
    with open(path) as f:
        return json.load(f)


def test_config_init_writes_a_valid_private_file_with_every_default(tmp_path):
    path = tmp_path / "config.json"
    done = run("config", "init", "-c", path, *INIT, "--mfa", "18", "--sign", "16")
    assert done.returncode == 0, done.stderr
    assert mode(path) == 0o600
    raw = load(path)
    cfg = device_config.validate(raw)  # the device's own validator accepts it
    assert cfg["gpio"]["relay"] == [16, 17] and cfg["gpio"]["momentary"] == {18: 2, 19: 2}
    assert raw["mqtt"]["port"] == 1883 and raw["guard"]["cooldown_s"] == 2  # example defaults
    key = raw["mfa"]["pins"]["18"][0]
    assert len(device_config.base32_decode(key)) == 20  # 160 bits
    assert len(raw["sign"]["keys"]["script"]) >= 40 and raw["sign"]["pins"] == {"16": ["script"]}
    # secrets stay in the file
    for secret in ("wifi-secret-pw", key, raw["sign"]["keys"]["script"]):
        assert secret not in done.stdout + done.stderr
    # two runs never share a key
    other = tmp_path / "other.json"
    assert run("config", "init", "-c", other, *INIT, "--mfa", "18").returncode == 0
    assert load(other)["mfa"]["pins"]["18"][0] != key


def test_config_init_refuses_to_overwrite_and_asks_for_missing_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert "exists" in one_line_error(run("config", "init", "-c", path, *INIT))
    assert path.read_text() == "{}"
    line = one_line_error(run("config", "init", "-c", tmp_path / "new.json", "--server", "x"))
    assert "--ssid" in line
    line = one_line_error(
        run("config", "init", "-c", tmp_path / "bad.json", *INIT, "--relay", "16,30", "--force")
    )
    assert "GP30 does not exist" in line and not (tmp_path / "bad.json").exists()


def test_config_check_gives_the_validators_messages_and_status(tmp_path):
    good = tmp_path / "good.json"
    assert run("config", "init", "-c", good, *INIT).returncode == 0
    done = run("config", "check", "-c", good)
    assert done.returncode == 0 and "valid" in done.stdout
    raw = load(good)
    raw["gpio"]["relay"] = [16, 40]
    raw["mqtt"]["keepalive"] = "x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    done = run("config", "check", "-c", bad)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    with pytest.raises(device_config.ConfigError) as e:
        device_config.validate(raw)
    assert lines == ["%s: %s" % (bad, p) for p in e.value.problems] and len(lines) == 2
    assert "wifi-secret-pw" not in done.stderr
    (tmp_path / "broken.json").write_text('{"wifi": ')
    done = run("config", "check", "-c", tmp_path / "broken.json")
    assert done.returncode == 1 and "invalid JSON" in done.stderr


def test_missing_unreadable_and_wrong_kind_of_file(tmp_path):
    assert "no such file" in one_line_error(run("config", "check", "-c", tmp_path / "none.json"))
    assert "directory" in one_line_error(run("config", "check", "-c", tmp_path))
    locked = tmp_path / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: use a file that cannot be opened
        locked = tmp_path / "fifo-less"
        os.symlink(tmp_path / "loop", locked)
        os.symlink(locked, tmp_path / "loop")
    assert "cannot read" in one_line_error(run("config", "check", "-c", locked))
    assert "no such file" in one_line_error(
        run("send", "-c", tmp_path / "none.json", '{"GP16": 1}')
    )
    assert "no such file" in one_line_error(run("config", "import", tmp_path / "old.py"))


# ---- keys and QR codes

QR_COLOURS = {16: 0, 231: 255}  # xterm-256 black and white: the QR code's own, on any theme


def terminal_qr_rows(text):
    """The QR code's rows of (top, bottom) pixels from half blocks drawn in explicit colours,
    asserting none is left to the terminal's theme."""
    import re

    rows = []
    for line in text.splitlines():
        if "\u2580" not in line:
            continue
        fg = bg = None
        cells = []
        for m in re.finditer(r"\x1b\[([0-9;]*)m|(.)", line):
            if m.group(2) is not None:
                assert m.group(2) == "\u2580" and fg in QR_COLOURS and bg in QR_COLOURS, line
                cells.append((QR_COLOURS[fg], QR_COLOURS[bg]))
                continue
            codes = [int(c) for c in m.group(1).split(";") if c] or [0]
            while codes:
                if codes[0] in (38, 48) and codes[1:2] == [5]:
                    fg, bg = (codes[2], bg) if codes[0] == 38 else (fg, codes[2])
                    codes = codes[3:]
                else:
                    if codes[0] == 0:
                        fg = bg = None
                    codes = codes[1:]
        rows.append(cells)
    return rows


def decode_terminal_qr(text):
    """The text in a QR code drawn with Unicode half blocks, decoded by zxing-cpp."""
    import zxingcpp

    pixels = []
    for cells in terminal_qr_rows(text):
        for half in (0, 1):
            pixels.append([cell[half] for cell in cells])
    assert pixels, "no QR code in:\n" + text
    scale = 4
    height, width = len(pixels) * scale, len(pixels[0]) * scale
    image = bytearray()
    for row in pixels:
        line = bytes(v for v in row for _ in range(scale))
        image += line * scale
    found = zxingcpp.read_barcode(memoryview(bytes(image)).cast("B", (height, width)))
    assert found is not None, "no QR code found in:\n" + text
    return found.text


def decode_png_qr(path):
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcode(Image.open(path))
    assert found is not None
    return found.text


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.json"
    assert run("config", "init", "-c", path, *INIT).returncode == 0
    return path


def test_key_new_adds_a_key_and_shows_its_qr_code(config, tmp_path):
    png = tmp_path / "key.png"
    done = run(
        "key", "new", "--pin", "18", "--name", "phone", "--config", config, "--png", png, "--show"
    )
    assert done.returncode == 0, done.stderr
    key = load(config)["mfa"]["pins"]["18"][-1]
    assert mode(config) == 0o600 and mode(png) == 0o600
    uri = [line for line in done.stdout.splitlines() if line.startswith("otpauth://")][0]
    # SHA-1, 6 digits and 30 s are the Key Uri Format's defaults: left out, the code is smaller
    assert (totp.DIGITS, totp.STEP_S) == (6, 30)
    assert uri == "otpauth://totp/tinyctrl%3Aphone%20GP18?secret=" + key + "&issuer=tinyctrl"
    assert decode_terminal_qr(done.stdout) == uri
    assert decode_png_qr(png) == uri
    device_config.validate(load(config))


def test_key_new_hides_the_secret_unless_asked(config):
    done = run("key", "new", "--pin", "16", "--config", config)
    assert done.returncode == 0, done.stderr
    key = load(config)["mfa"]["pins"]["16"][-1]
    assert key not in done.stdout and "secret=<hidden" in done.stdout
    # the QR code still carries it: that is how the phone gets the key
    assert decode_terminal_qr(done.stdout).endswith("secret=%s&issuer=tinyctrl" % key)
    again = run("key", "show", "--pin", "16", "--config", config)
    assert decode_terminal_qr(again.stdout) == decode_terminal_qr(done.stdout)


def test_key_new_update_makes_a_private_key_and_puts_its_public_key_in_the_config(config):
    before = load(config)
    assert before.pop("update") == {"key": ""}  # config init writes every default: no key
    done = run("key", "new", "--update", "--config", config)
    assert done.returncode == 0, done.stderr
    pem = str(config)[: -len(".json")] + ".update.pem"
    assert mode(pem) == 0o600
    with open(pem) as f:
        secret = f.read()
    body = "".join(secret.strip().splitlines()[1:-1])
    assert "PRIVATE KEY" in secret and body not in done.stdout + done.stderr
    assert "PRIVATE" not in done.stdout + done.stderr
    raw = load(config)
    public = raw.pop("update")["key"]
    assert raw == before  # nothing else changed
    assert public.startswith("04") and len(public) == 130 and public not in secret
    assert device_config.validate(load(config))["update"]["key"] == public
    assert "update.key" in done.stdout and pem in done.stdout
    # a second key would lock out every device that trusts the first
    again = run("key", "new", "--update", "--config", config)
    assert again.returncode == 2 and "already there" in one_line_error(again)
    assert load(config)["update"]["key"] == public
    both = run("key", "new", "--update", "--pin", "16", "--config", config)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    png = run("key", "new", "--update", "--png", "k.png", "--config", config)
    assert png.returncode == 2 and "not --update" in one_line_error(png)


def test_key_code_prints_the_current_code(config):
    assert run("key", "new", "--pin", "17", "--config", config).returncode == 0
    key = load(config)["mfa"]["pins"]["17"][0]
    for _ in range(3):  # a code printed just as the 30 s step turns over is retried
        before = totp_now(key)
        done = run("key", "code", "--pin", "17", "--config", config)
        if before == totp_now(key):
            break
    assert done.returncode == 0
    assert "GP17 key 1: %06d" % before in done.stdout


def test_key_errors(config):
    assert "not a relay" in one_line_error(run("key", "new", "--pin", "0", "--config", config))
    assert "no TOTP key" in one_line_error(run("key", "code", "--pin", "16", "--config", config))
    assert "has 0 key" in one_line_error(run("key", "show", "--pin", "16", "--config", config))


# ---- seed config import


def import_seed(tmp_path, text, name="mqtt_tiny_controller_config.py"):
    old = tmp_path / name
    old.write_text(text)
    out = tmp_path / "imported.json"
    return run("config", "import", old, "-c", out), out


def test_import_of_a_seed_config_with_momentary_set_and_mfa_on(tmp_path):
    done, out = import_seed(tmp_path, SEED_SET)
    assert done.returncode == 0, done.stderr
    assert mode(out) == 0o600
    raw = load(out)
    cfg = device_config.validate(raw)
    assert raw["wifi"] == {
        "ssid": "HomeWifi",
        "password": "wifi-secret-pw",
        "max_retries": 30,
        "reset_delay_s": 600,
    }
    assert raw["mqtt"]["client_id"] == "pico-garage" and raw["mqtt"]["port"] == 8883
    assert raw["mqtt"]["ssl"] is True and raw["mqtt"]["ca_file"] == "ca.pem"
    assert cfg["gpio"]["momentary"] == {18: 3, 19: 3}  # the seed's default wait
    assert cfg["gpio"]["relay"] == [16, 17] and cfg["gpio"]["notify"] == [0, 1, 16, 17]
    assert raw["mfa"]["pins"] == {
        "16": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"],
        "18": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
    }
    assert raw["timezone"] == "EST" and raw["ntp"]["force_wait_s"] == 180
    assert "wifi_ssid -> wifi.ssid" in done.stdout
    assert "mqtt_client_id -> mqtt.client_id" in done.stdout
    assert "8883" in done.stdout and "time_keyname has no equivalent" in done.stdout
    assert "default_clock_year_in_unix_timestamp has no equivalent" in done.stdout
    assert "wifi-secret-pw" not in done.stdout and "broker-secret-pw" not in done.stdout


def test_import_of_an_older_seed_config_with_momentary_waits_mfa_off_and_minus_one(tmp_path):
    done, out = import_seed(tmp_path, SEED_DICT)
    assert done.returncode == 0, done.stderr
    raw = load(out)
    cfg = device_config.validate(raw)
    assert cfg["gpio"]["momentary"] == {26: 10, 27: 2} and cfg["mfa"]["pins"] == {}
    assert raw["wifi"]["reset_delay_s"] == -1 and raw["publish_interval_s"] == -1
    assert raw["guard"]["max_changes"] == 5 and raw["mfa"]["max_expired_codes"] == 10
    for note in (
        "wifi_max_retries -1",
        "hardware_modified_max = -1",
        "mqtt_qos = 0 has no equivalent",
        "totp_max_expired_codes = 12 lowered to 10",
        "MFA off",
    ):
        assert note in done.stdout, note


@pytest.mark.parametrize(
    "text, expected",
    [
        ("wifi_ssid = 'x'\nbroker_server = 'y\n", "syntax error"),
        ("wifi_ssid = 'x'\nimport os\n", ":2: only `name = value`"),
        (
            "wifi_ssid = 'x'\nwifi_pass = open('/etc/passwd').read()\n",
            ":2: wifi_pass is not a plain value",
        ),
        (
            "wifi_ssid = __import__('os').system('touch pwned')\n",
            ":1: wifi_ssid is not a plain value",
        ),
        ("def f():\n    pass\n", ":1: only `name = value`"),
    ],
)
def test_import_refuses_syntax_errors_and_code_without_running_it(tmp_path, text, expected):
    done, out = import_seed(tmp_path, text)
    assert expected in one_line_error(done)
    assert not out.exists() and not (tmp_path / "pwned").exists()


def test_import_names_what_the_device_would_refuse(tmp_path):
    done, out = import_seed(tmp_path, SEED_DICT.replace("{26: 10, 27: 2}", "{26: 10, 40: 2}"))
    assert "GP40 does not exist" in one_line_error(done) and not out.exists()


# ---- flash


def bootsel_drive(tmp_path):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INDEX.HTM").write_text("<html>")
    (drive / "INFO_UF2.TXT").write_text(
        "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
    )
    return drive


RP2040 = 0xE48BFF56


def uf2_blocks(blocks=300, family=RP2040):
    """A UF2 image as the RP2040 build writes it: 256 bytes of flash per 512-byte block."""
    data = bytearray()
    for i in range(blocks):
        header = [0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * i, 256, i, blocks, family]
        block = b"".join(v.to_bytes(4, "little") for v in header) + bytes(476)
        data += block + (0x0AB16F30).to_bytes(4, "little")
    return data


def uf2_file(tmp_path, blocks=300, family=RP2040, name="firmware.uf2"):
    path = tmp_path / name
    path.write_bytes(bytes(uf2_blocks(blocks, family)))
    return path


def test_flash_copies_the_uf2_to_the_bootsel_drive_with_progress(tmp_path):
    drive, uf2 = bootsel_drive(tmp_path), uf2_file(tmp_path)
    done = run("flash", uf2, "--drive", drive)
    assert done.returncode == 0, done.stderr
    assert (drive / "firmware.uf2").read_bytes() == uf2.read_bytes()
    assert "flashing 100%" in done.stderr and "flashing 0%" in done.stderr


def test_flash_errors(tmp_path):
    uf2 = uf2_file(tmp_path)
    other = tmp_path / "usbstick"
    other.mkdir()
    assert "not a Pico in BOOTSEL mode" in one_line_error(run("flash", uf2, "--drive", other))
    assert list(other.iterdir()) == []
    not_uf2 = tmp_path / "notes.txt"
    not_uf2.write_text("hello")
    drive = bootsel_drive(tmp_path)
    assert "not a UF2" in one_line_error(run("flash", not_uf2, "--drive", drive))
    assert "no such file" in one_line_error(run("flash", tmp_path / "none.uf2", "--drive", drive))


def test_config_init_asks_in_a_terminal_without_echoing_passwords(tmp_path):
    path = tmp_path / "config.json"
    term = Terminal("config", "init", "-c", path)
    for prompt, text in (
        ("(SSID): ", "HomeWifi"),
        ("Wi-Fi password", "wifi-secret-pw"),
        ("broker host: ", "broker.example"),
        ("TLS", "n"),
        ("broker port [1883]: ", ""),
        ("(empty: none): ", "pico"),
        ("broker password: ", "broker-secret-pw"),
        ("home/garage: ", "home/g"),
        ("16,17: ", "16"),
        ("18:2 (empty: none): ", "18:5"),
        ("0,1 (empty: none): ", ""),
    ):
        term.answer(prompt, text)
    assert term.finish() == 0
    raw = load(path)
    device_config.validate(raw)
    assert raw["wifi"]["password"] == "wifi-secret-pw" and raw["mqtt"]["user"] == "pico"
    assert raw["gpio"]["momentary"] == {"18": 5} and raw["mqtt"]["topic"] == "home/g"
    assert raw["mqtt"]["ssl"] is False and raw["mqtt"]["port"] == 1883
    transcript = term.transcript
    assert b"wrote" in transcript and b"HomeWifi" in transcript  # answers echo, passwords not
    assert b"wifi-secret-pw" not in transcript and b"broker-secret-pw" not in transcript


def test_config_init_asks_about_tls_and_asks_again_after_a_wrong_answer(tmp_path):
    path = tmp_path / "config.json"
    term = Terminal("config", "init", "-c", path)
    for prompt, text in (
        ("(SSID): ", ""),
        ("(SSID): ", "HomeWifi"),
        ("Wi-Fi password", ""),
        ("broker host: ", "mqtts://xxxx.s1.eu.hivemq.cloud:8883"),
        ("broker host: ", "xxxx.s1.eu.hivemq.cloud"),
        ("TLS", "maybe"),
        ("TLS", ""),
        ("broker port [8883]: ", "http"),
        ("broker port [8883]: ", "99999"),
        ("broker port [8883]: ", ""),
        ("CA certificate", ""),
        ("(empty: none): ", ""),
        ("home/garage: ", "home/#"),
        ("home/garage: ", "home/g"),
        ("16,17: ", "16,30"),
        ("18:2 (empty: none): ", ""),
        ("0,1 (empty: none): ", ""),
        ("16,17: ", "16"),
        ("18:2 (empty: none): ", ""),
        ("0,1 (empty: none): ", "16"),
        ("16,17: ", "16"),
        ("18:2 (empty: none): ", ""),
        ("0,1 (empty: none): ", "0"),
    ):
        term.answer(prompt, text)
    assert term.finish() == 0, term.transcript.decode()
    raw = load(path)
    device_config.validate(raw)
    assert raw["mqtt"]["server"] == "xxxx.s1.eu.hivemq.cloud"
    assert raw["mqtt"]["ssl"] is True and raw["mqtt"]["port"] == 8883
    assert raw["mqtt"]["ca_file"] == "ca.pem"
    assert raw["gpio"]["relay"] == [16] and raw["gpio"]["contact"] == [0]
    for said in (b"a URL", b"GP30 does not exist", b"without wildcards", b"GP16 is in both"):
        assert said in term.transcript, said


def test_config_init_flags_for_tls_and_what_is_left_empty(tmp_path):
    path = tmp_path / "insecure.json"
    base = ["--ssid", "w", "--server", "broker.example", "--topic", "t/x", "--relay", "16"]
    done = run("config", "init", "-c", path, *base, "--tls-insecure")
    assert done.returncode == 0, done.stderr
    raw = load(path)
    assert raw["mqtt"]["ssl"] is True and raw["mqtt"]["tls_insecure"] is True
    assert raw["mqtt"]["port"] == 8883
    assert "empty Wi-Fi password" in done.stdout + done.stderr
    line = one_line_error(
        run(
            "config",
            "init",
            "-c",
            tmp_path / "url.json",
            *base[:2],
            "--server",
            "mqtt://broker.example:1883",
            *base[4:],
        )
    )
    assert "--server" in line and "a URL" in line
    assert not (tmp_path / "url.json").exists()
    done = run("config", "init", "-c", tmp_path / "user.json", *base, "--user", "pico")
    assert done.returncode == 0 and "empty broker password" in done.stdout + done.stderr


def test_key_new_does_all_or_nothing(config, tmp_path):
    before = config.read_bytes()
    done = run("key", "new", "--pin", "18", "--config", config, "--png", tmp_path / "no" / "k.png")
    assert "cannot write" in one_line_error(done)
    assert config.read_bytes() == before  # no key that nobody scanned
    (tmp_path / "k.png").mkdir()  # the PNG's name taken by a folder
    one_line_error(
        run("key", "new", "--pin", "18", "--config", config, "--png", tmp_path / "k.png")
    )
    assert config.read_bytes() == before


def test_key_new_list_and_remove(config):
    assert run("key", "new", "--pin", "18", "--config", config).returncode == 0
    done = run("key", "new", "--pin", "18", "--name", "phone", "--config", config)
    assert done.returncode == 0 and "GP18 already has 1 key" in done.stdout
    first, second = load(config)["mfa"]["pins"]["18"]
    done = run("key", "list", "--config", config)
    assert done.returncode == 0, done.stderr
    assert "GP18 key 1\n" in done.stdout and "GP18 key 2 (phone)" in done.stdout
    assert first not in done.stdout and second not in done.stdout
    # remove is revoke's other name: one command, one set of rules
    done = run("key", "remove", "--pin", "18", "--index", "1", "--config", config)
    assert done.returncode == 0, done.stderr
    assert load(config)["mfa"]["pins"]["18"] == [second] and mode(config) == 0o600
    assert "GP18 key 1 (phone)" in run("key", "list", "--config", config).stdout
    last = run("key", "remove", "--pin", "18", "--name", "phone", "--config", config)
    assert "only key" in one_line_error(last) and load(config)["mfa"]["pins"]["18"] == [second]
    last = run("key", "revoke", "--pin", "18", "--name", "phone", "--leave-open", "-c", config)
    assert last.returncode == 0, last.stderr
    assert "18" not in load(config)["mfa"]["pins"]
    device_config.validate(load(config))
    assert "no TOTP key" in one_line_error(run("key", "list", "--config", config))
    assert "has no TOTP key" in one_line_error(
        run("key", "remove", "--pin", "18", "--index", "1", "--config", config)
    )


def self_signed(path):
    import subprocess

    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=tinyctrl-test",
            "-keyout",
            str(path) + ".key",
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
    )


def test_config_check_refuses_what_the_board_would(tmp_path):
    path = tmp_path / "config.json"
    assert run("config", "init", "-c", path, *INIT, "--ca-file", "ca.pem").returncode == 0
    done = run("config", "check", "-c", path)
    assert done.returncode == 1 and "mqtt.ca_file: " in done.stderr
    assert str(tmp_path / "ca.pem") + " not found" in done.stderr
    (tmp_path / "ca.pem").write_text("not a certificate")
    done = run("config", "check", "-c", path)
    assert done.returncode == 1 and "is not a PEM certificate" in done.stderr
    self_signed(tmp_path / "ca.pem")
    done = run("config", "check", "-c", path)
    assert done.returncode == 0, done.stderr
    # beside the config file, as the board reads it, whatever folder the command runs in
    done = run("config", "check", "-c", path, cwd="/")
    assert done.returncode == 0, done.stderr
    raw = load(path)
    raw["gpio"]["relay"] = [16, 16]
    path.write_text(json.dumps(raw))
    done = run("config", "check", "-c", path)
    assert done.returncode == 1 and "gpio.relay: GP16 is listed twice" in done.stderr


def test_flash_refuses_an_image_for_another_chip_or_a_damaged_one(tmp_path):
    drive = bootsel_drive(tmp_path)
    esp = uf2_file(tmp_path, family=0xBFDD4EEE, name="esp32s2.uf2")
    line = one_line_error(run("flash", esp, "--drive", drive))
    assert "ESP32-S2" in line and "RP2040" in line
    line = one_line_error(
        run("flash", uf2_file(tmp_path, family=0xE48BFF59, name="rp2350.uf2"), "--drive", drive)
    )
    assert "RP2350" in line
    magic = tmp_path / "magic.uf2"  # one block of magic words and nothing else
    magic.write_bytes(b"UF2\n" + (0x9E5D5157).to_bytes(4, "little") + bytes(504))
    assert "not a UF2" in one_line_error(run("flash", magic, "--drive", drive))
    good = uf2_blocks(10)
    cut = tmp_path / "cut.uf2"  # the last blocks missing
    cut.write_bytes(bytes(good[: 512 * 8]))
    assert "8 of its 10 blocks" in one_line_error(run("flash", cut, "--drive", drive))
    damaged = tmp_path / "damaged.uf2"
    damaged.write_bytes(bytes(good[: 512 * 4] + bytes(512) + good[512 * 5 :]))
    assert "block 4 is damaged" in one_line_error(run("flash", damaged, "--drive", drive))
    assert sorted(p.name for p in drive.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT"]


def test_provision_on_a_port_that_never_answers(config):
    import time

    master, slave = os.openpty()  # a serial port that takes the bytes and never answers
    try:
        started = time.monotonic()
        done = run("provision", "-c", config, "--port", os.ttyname(slave), "--no-wait", timeout=60)
        assert "did not answer within" in one_line_error(done)
        assert time.monotonic() - started < 45
        assert "mpremote" in done.stdout
    finally:
        os.close(master)
        os.close(slave)


def test_provision_watches_the_broker_as_this_pc_reaches_it(config):
    """--broker replaces the board's whole cluster (mqtt.servers), not only its first node:
    the board's names may resolve only on its own network."""
    from tinyctrl_host import board_cmds, configfile

    cfg = load(config)
    del cfg["mqtt"]["server"]
    cfg["mqtt"]["servers"] = ["node-a.lan", "node-b.lan:1884"]
    config.write_text(json.dumps(cfg))
    _, normal = configfile.load(str(config))
    seen = board_cmds._broker_override(normal, "127.0.0.1:1999")["mqtt"]
    assert [tuple(n) for n in seen["servers"]] == [("127.0.0.1", 1999)]
    assert board_cmds._broker_override(normal, None) is normal


def test_the_qr_code_fits_an_80_by_24_terminal_last(config):
    """At most 21 rows, drawn last, so the whole code shows in 24 rows with the prompt below;
    its own black and white read on a dark and a light theme alike (terminal_qr_rows)."""
    done = run("key", "new", "--pin", "16", "--config", config)  # account "home/garage GP16"
    assert done.returncode == 0, done.stderr
    rows = terminal_qr_rows(done.stdout)
    assert len(rows) <= 21 and max(len(r) for r in rows) <= 80
    lines = done.stdout.rstrip("\n").splitlines()
    first = next(i for i, line in enumerate(lines) if "\u2580" in line)
    assert len(lines) - first == len(rows), lines[first:]  # nothing after it scrolls it away
    assert decode_terminal_qr(done.stdout).startswith("otpauth://totp/")
    done = run("key", "show", "--pin", "16", "--config", config, "--name", "x" * 40)
    assert done.returncode == 0 and "use --png or a shorter --name" in done.stdout


def test_import_replaces_the_seeds_published_example_keys_and_knows_ntp(tmp_path):
    example = ("ONSWG4TFOQQHI33UOAQGG3DJMVXHIIBR", "MNWGSZLOOQQDEIDTMVRXEZLU")
    text = SEED_SET.replace('"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"', '"%s"' % example[0]).replace(
        '"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"', '"%s"' % example[1]
    )
    done, out = import_seed(tmp_path, text + '\ncommands = ["stats", "getip", "ntp", "reboot"]\n')
    assert done.returncode == 0, done.stderr
    pins = load(out)["mfa"]["pins"]
    assert not set(example) & set(pins["16"] + pins["18"])
    assert pins["16"][0] == pins["18"][0] != pins["16"][1]  # one key for both pins, as before
    assert "GP16 key 1: the seed's published example key" in done.stdout
    assert "tinyctrl key show --pin 16 --index 1" in done.stdout
    assert "commands: reboot not available" in done.stdout and "ntp not" not in done.stdout
    assert pins["16"][0] not in done.stdout  # new keys stay in the file
