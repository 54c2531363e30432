# SPDX-License-Identifier: MIT
"""The panel's reader of device output (panel/src/device.js, readOutput) against the device's
own (protocol.read_output) over one corpus: what the device publishes, forgeries of it and
other clients' messages. No browser needed."""

import json
import pathlib
import shutil
import subprocess

import pytest
from tinyctrl import protocol

SRC = pathlib.Path(__file__).resolve().parents[2] / "panel" / "src"
PREFIXES = ("GP", "PIN")
CORPUS = [
    protocol.state_json("GP", {16: 1, 0: 0, 27: 1}, "garage-pico"),
    protocol.notify_json("GP", {1: 1}, "garage-pico"),
    protocol.status_json("offline", "garage-pico"),
    protocol.ip_json("203.0.113.7", "garage-pico"),
    protocol.state_json("PIN", {5: 0}, "shed"),
    "Error: MFA validation failed, GPIO cannot be set",
    "Info: MFA code accepted",
    "Uptime=0 days 1 hrs 2 min, Outages=0, Mem=12.5%, Rtc=not synced, Version=1.0.0",
    '{"GP16": 1}',  # a request: no mark
    '{"GP16": 1, "FROM": 7}',
    '{"GP16": 2, "FROM": "garage-pico"}',
    '{"GP16": true, "FROM": "garage-pico"}',
    '{"GP16": "1", "FROM": "garage-pico"}',
    '{"GPx": 1, "FROM": "garage-pico"}',
    '{"NOTIFY": [1], "FROM": "garage-pico"}',
    '{"STATUS": 0, "FROM": "garage-pico"}',
    '{"GP16": 1, "FROM": "garage-pico"',
    '["FROM"]',
    '{"FROM": "garage-pico"}',
    '{"GP16": 1, "GP16": 0, "FROM": "a", "FROM": "b"}',
    '{"x": "\\"FROM\\"", "GP16": 1}',
    "",
    "Error:",
]
SCRIPT = """
import { readOutput } from "%s/device.js";
const [corpus, prefixes] = JSON.parse(process.argv[1]);
console.log(JSON.stringify(prefixes.map((p) => corpus.map((t) => readOutput(t, p)))));
"""


def test_the_panel_reads_device_output_as_the_device_writes_it():
    if not shutil.which("node"):
        pytest.skip("node not installed (requirements-apt.txt)")
    if not (SRC.parent / "node_modules" / "mqtt").is_dir():  # device.js imports MQTT.js
        build = subprocess.run(
            ["./build.sh", "panel"], cwd=SRC.parents[1], capture_output=True, text=True
        )
        assert build.returncode == 0, build.stdout + build.stderr
    proc = subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            SCRIPT % SRC.as_uri(),
            json.dumps([CORPUS, PREFIXES]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SRC.parent,
    )
    assert proc.returncode == 0, proc.stderr
    panel = json.loads(proc.stdout)
    for prefix, seen in zip(PREFIXES, panel):
        for text, js in zip(CORPUS, seen):
            py = protocol.read_output(text, prefix)
            expected = py and {"kind": py[0], "value": py[1], "sender": py[2]}
            # JSON has only string keys: compare as the panel's JSON shows them
            assert js == json.loads(json.dumps(expected)), (prefix, text)
