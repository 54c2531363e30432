# SPDX-License-Identifier: MIT
# The PC's sealing (tinyctrl_host.push, `cryptography`'s AES-CTR and the standard library's
# HMAC) against the device's opener (tinyctrl.seal, CTR built from ECB): the fixed vector of
# test_seal.py is what the PC makes, and a full-size config sealed and chunked by the PC is
# opened by the device's Receiver.
import os

import test_seal
import test_trial
from tinyctrl_host import push as host_push

from tinyctrl import config, push, trial


def test_the_fixed_vector_is_what_the_pc_seals():
    nonce = bytes(range(0xF0, 0x100))
    assert (
        host_push.seal_config(
            test_seal.PLAIN, test_seal.KEY, 17, "garage-pico", "home/pico", 120, nonce
        )
        == test_seal.SEALED
    )


def test_a_full_size_config_sealed_and_chunked_by_the_pc_is_opened_by_the_device():
    dev = test_trial.Device()
    raw = test_trial.raw_config()
    raw["sign"] = {"keys": {}}
    while len(test_trial.text(raw)) < config.MAX_PAYLOAD - 100:
        raw["sign"]["keys"]["k%d" % len(raw["sign"]["keys"])] = os.urandom(16).hex()
    text = test_trial.text(raw)
    seq = host_push.new_seq()
    parts = host_push.chunks(
        host_push.seal_config(text, test_trial.KEY, seq, "garage-pico", "home/pico"), seq
    )
    assert all(len(p) <= 600 for p in parts)  # under the device's 1 KB inbound limit
    dev.send(parts)
    assert dev.outbox.errors == [] and dev.read(trial.NEW) == text
    assert dev.read(push.SEQ_FILE) == str(seq).encode()
