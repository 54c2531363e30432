# SPDX-License-Identifier: MIT
"""Issue 11, the `tinyctrl` commands that need no broker: config init / check / import, key new /
show / code (the QR code decoded back with zxing-cpp), flash onto a folder that looks like the
Pico's BOOTSEL drive, and every bad input as one line and a non-zero exit."""
import json
import os
import stat

import pytest
from hostcli import one_line_error, run
from seed_configs import SEED_DICT, SEED_SET
from oracle import totp_now

from tinyctrl import config as device_config

INIT = ["--ssid", "MyWifi", "--wifi-password", "wifi-secret-pw", "--server", "broker.example",
        "--topic", "home/garage", "--relay", "16,17", "--momentary", "18:2,19", "--contact",
        "0,1", "--notify", "0,16"]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def load(path):
    with open(path) as f:
        return json.load(f)


def test_config_init_writes_a_valid_private_file_with_every_default(tmp_path):
    path = tmp_path / "config.json"
    done = run("config", "init", path, *INIT, "--mfa", "18", "--sign", "16")
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
    assert run("config", "init", other, *INIT, "--mfa", "18").returncode == 0
    assert load(other)["mfa"]["pins"]["18"][0] != key


def test_config_init_refuses_to_overwrite_and_asks_for_missing_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert "exists" in one_line_error(run("config", "init", path, *INIT))
    assert path.read_text() == "{}"
    line = one_line_error(run("config", "init", tmp_path / "new.json", "--server", "x"))
    assert "--ssid" in line
    line = one_line_error(run("config", "init", tmp_path / "bad.json", *INIT, "--relay", "16,30",
                              "--force"))
    assert "GP30 does not exist" in line and not (tmp_path / "bad.json").exists()


def test_config_check_gives_the_validators_messages_and_status(tmp_path):
    good = tmp_path / "good.json"
    assert run("config", "init", good, *INIT).returncode == 0
    done = run("config", "check", good)
    assert done.returncode == 0 and "valid" in done.stdout
    raw = load(good)
    raw["gpio"]["relay"] = [16, 40]
    raw["mqtt"]["keepalive"] = "x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    done = run("config", "check", bad)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    with pytest.raises(device_config.ConfigError) as e:
        device_config.validate(raw)
    assert lines == ["%s: %s" % (bad, p) for p in e.value.problems] and len(lines) == 2
    assert "wifi-secret-pw" not in done.stderr
    (tmp_path / "broken.json").write_text('{"wifi": ')
    done = run("config", "check", tmp_path / "broken.json")
    assert done.returncode == 1 and "invalid JSON" in done.stderr


def test_missing_unreadable_and_wrong_kind_of_file(tmp_path):
    assert "no such file" in one_line_error(run("config", "check", tmp_path / "none.json"))
    assert "directory" in one_line_error(run("config", "check", tmp_path))
    locked = tmp_path / "locked.json"
    locked.write_text("{}")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: use a file that cannot be opened
        locked = tmp_path / "fifo-less"
        os.symlink(tmp_path / "loop", locked)
        os.symlink(locked, tmp_path / "loop")
    assert "cannot read" in one_line_error(run("config", "check", locked))
    assert "no such file" in one_line_error(run("send", tmp_path / "none.json", '{"GP16": 1}'))
    assert "no such file" in one_line_error(run("config", "import", tmp_path / "old.py"))


# ---- keys and QR codes

def decode_terminal_qr(text):
    """The text in a QR code drawn with Unicode half blocks, decoded by zxing-cpp."""
    import zxingcpp

    halves = {" ": (0, 0), "\u2580": (1, 0), "\u2584": (0, 1), "\u2588": (1, 1)}  # drawn = light
    rows = [line for line in text.splitlines() if line and set(line) <= set(halves)]
    pixels = []
    for line in rows:
        for half in (0, 1):
            pixels.append([255 if halves[c][half] else 0 for c in line])
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
    assert run("config", "init", path, *INIT).returncode == 0
    return path


def test_key_new_adds_a_key_and_shows_its_qr_code(config, tmp_path):
    png = tmp_path / "key.png"
    done = run("key", "new", "--pin", "18", "--name", "phone", "--config", config, "--png", png,
               "--show")
    assert done.returncode == 0, done.stderr
    key = load(config)["mfa"]["pins"]["18"][-1]
    assert mode(config) == 0o600 and mode(png) == 0o600
    uri = [line for line in done.stdout.splitlines() if line.startswith("otpauth://")][0]
    assert uri == ("otpauth://totp/tinyctrl%3Aphone%20GP18?secret=" + key +
                   "&issuer=tinyctrl&algorithm=SHA1&digits=6&period=30")
    assert decode_terminal_qr(done.stdout) == uri
    assert decode_png_qr(png) == uri
    device_config.validate(load(config))


def test_key_new_hides_the_secret_unless_asked(config):
    done = run("key", "new", "--pin", "16", "--config", config)
    assert done.returncode == 0, done.stderr
    key = load(config)["mfa"]["pins"]["16"][-1]
    assert key not in done.stdout and "secret=<hidden" in done.stdout
    # the QR code still carries it: that is how the phone gets the key
    assert decode_terminal_qr(done.stdout).endswith(
        "secret=%s&issuer=tinyctrl&algorithm=SHA1&digits=6&period=30" % key)
    again = run("key", "show", "--pin", "16", "--config", config)
    assert decode_terminal_qr(again.stdout) == decode_terminal_qr(done.stdout)


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
    return run("config", "import", old, "-o", out), out


def test_import_of_a_seed_config_with_momentary_set_and_mfa_on(tmp_path):
    done, out = import_seed(tmp_path, SEED_SET)
    assert done.returncode == 0, done.stderr
    assert mode(out) == 0o600
    raw = load(out)
    cfg = device_config.validate(raw)
    assert raw["wifi"] == {"ssid": "HomeWifi", "password": "wifi-secret-pw", "max_retries": 30,
                           "reset_delay_s": 600}
    assert raw["mqtt"]["client_id"] == "pico-garage" and raw["mqtt"]["port"] == 8883
    assert raw["mqtt"]["ssl"] is True and raw["mqtt"]["ca_file"] == "ca.pem"
    assert cfg["gpio"]["momentary"] == {18: 3, 19: 3}  # the seed's default wait
    assert cfg["gpio"]["relay"] == [16, 17] and cfg["gpio"]["notify"] == [0, 1, 16, 17]
    assert raw["mfa"]["pins"] == {"16": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                                         "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"],
                                  "18": ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]}
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
    for note in ("wifi_max_retries -1", "hardware_modified_max = -1", "mqtt_qos = 0 has no "
                 "equivalent", "totp_max_expired_codes = 12 lowered to 10", "MFA off"):
        assert note in done.stdout, note


@pytest.mark.parametrize("text, expected", [
    ("wifi_ssid = 'x'\nbroker_server = 'y\n", "syntax error"),
    ("wifi_ssid = 'x'\nimport os\n", ":2: only `name = value`"),
    ("wifi_ssid = 'x'\nwifi_pass = open('/etc/passwd').read()\n",
     ":2: wifi_pass is not a plain value"),
    ("wifi_ssid = __import__('os').system('touch pwned')\n", ":1: wifi_ssid is not a plain value"),
    ("def f():\n    pass\n", ":1: only `name = value`"),
])
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
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\n"
                                        "Board-ID: RPI-RP2\n")
    return drive


def uf2_file(tmp_path, blocks=300):
    data = bytearray()
    for i in range(blocks):
        block = bytearray(512)
        block[0:4] = b"UF2\n"
        block[4:8] = (0x9E5D5157).to_bytes(4, "little")
        block[8:12] = i.to_bytes(4, "little")
        data += block
    path = tmp_path / "firmware.uf2"
    path.write_bytes(bytes(data))
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
    import fcntl
    import pty
    import select
    import subprocess
    import termios

    from hostcli import argv, env

    def own_terminal():  # the pty becomes the controlling terminal, as in a real session
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    path = tmp_path / "config.json"
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv("config", "init", path), stdin=slave, stdout=slave, stderr=slave,
                            env=env(), preexec_fn=own_terminal)
    os.close(slave)
    transcript = bytearray()  # everything the terminal showed
    shown = 0  # how much of it the prompts so far have used

    def read():
        try:
            transcript.extend(os.read(master, 1024))
        except OSError:  # the command ended and closed the terminal
            return False
        return True

    def answer(prompt, text):
        nonlocal shown
        while transcript.find(prompt.encode(), shown) < 0:
            assert select.select([master], [], [], 30)[0], "no prompt %r: %r" % (
                prompt, transcript)
            read()
        shown = transcript.find(prompt.encode(), shown) + len(prompt)
        os.write(master, text.encode() + b"\n")

    for prompt, text in (("(SSID): ", "HomeWifi"), ("Wi-Fi password: ", "wifi-secret-pw"),
                         ("broker host: ", "broker.example"), ("(empty: none): ", "pico"),
                         ("broker password: ", "broker-secret-pw"), ("home/garage: ", "home/g"),
                         ("16,17: ", "16"), ("18:2 (empty: none): ", "18:5"),
                         ("0,1 (empty: none): ", "")):
        answer(prompt, text)
    assert proc.wait(30) == 0
    while select.select([master], [], [], 0.5)[0] and read():
        pass
    os.close(master)
    raw = load(path)
    device_config.validate(raw)
    assert raw["wifi"]["password"] == "wifi-secret-pw" and raw["mqtt"]["user"] == "pico"
    assert raw["gpio"]["momentary"] == {"18": 5} and raw["mqtt"]["topic"] == "home/g"
    assert b"wrote" in transcript and b"HomeWifi" in transcript  # answers echo, passwords not
    assert b"wifi-secret-pw" not in transcript and b"broker-secret-pw" not in transcript
