# SPDX-License-Identifier: MIT
# AuthGate with a fake clock (times are passed in): codes used once, grants, inline codes,
# signed commands, pin policies, lockout. Runs under CPython and MicroPython (no pytest).
import json

from check import hexlify, raises
from tinyctrl import config, protocol, totp
from tinyctrl.auth import DENIED, MAX_LOCKOUT_S, AuthError, AuthGate

TOPIC = "home/pico"
KEY_A = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the owner's phone: light and garage
KEY_B = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # a second phone: light and porch
SCHEDULER = "scheduler-signing-key-01"
OTHER = "another-program-key-0002"
T0 = 1767225615  # mid time step, so +-a few seconds stays in the same step
GRANT_S, WINDOW_S, FAILURES, LOCKOUT_S, MAX_EXPIRED = 30, 60, 3, 30, 5
OPEN, LIGHT, GARAGE, SPRINKLER, PORCH, GATE = 16, 17, 18, 19, 20, 21


def gate():
    """GP16 open; GP17 TOTP A or B; GP18 TOTP A; GP19 signed by the scheduler;
    GP20 TOTP B or signed by the scheduler; GP21 signed by the other program."""
    cfg = config.validate(
        {
            "wifi": {"ssid": "s"},
            "mqtt": {"server": "b", "topic": TOPIC},
            "gpio": {
                "relay": [OPEN, LIGHT, SPRINKLER, PORCH, GATE],
                "momentary": {str(GARAGE): 1},
            },
            "mfa": {
                "pins": {str(LIGHT): [KEY_A, KEY_B], str(GARAGE): [KEY_A], str(PORCH): [KEY_B]},
                "grant_s": GRANT_S,
                "max_expired_codes": MAX_EXPIRED,
            },
            "sign": {
                "keys": {"scheduler": SCHEDULER, "other": OTHER},
                "pins": {
                    str(SPRINKLER): ["scheduler"],
                    str(PORCH): ["scheduler"],
                    str(GATE): ["other"],
                },
                "window_s": WINDOW_S,
            },
            "guard": {"auth_failures": FAILURES, "auth_lockout_s": LOCKOUT_S},
        }
    )
    return AuthGate(cfg, TOPIC)


def code(key, at=T0, steps=0):
    return totp.hotp(totp.base32_decode(key), totp.counter_at(at) + steps)


def wrong_code(key, at=T0):
    """A code that is valid at no step of the acceptance window."""
    valid = [code(key, at, s) for s in range(-MAX_EXPIRED, 2)]
    guess = 0
    while guess in valid:
        guess += 1
    return guess


def req(obj):
    return protocol.parse(
        json.dumps(obj).encode(), "GP", "MFA", (OPEN, LIGHT, GARAGE, SPRINKLER, PORCH, GATE), ()
    )


def signed(pins, ts, key=SCHEDULER, topic=TOPIC):
    """A signed request dict, computed as tools/sign.py documents it."""
    text = protocol.canonical(topic, ts, pins, "GP")
    obj = dict(("GP%d" % p, v) for p, v in pins.items())
    obj["TS"] = ts
    obj["SIG"] = hexlify(totp.hmac_sha256(key.encode(), text.encode()))
    return obj


def ms(now):
    """The monotonic milliseconds the controller would pass at unix time `now`."""
    return (now - T0) * 1000 + 10**6


def synced_at(synced):
    """The clock's first sync on this boot: an hour before T0, or None (not synced)."""
    return T0 - 3600 if synced else None


def allowed(g, obj, now=T0):
    g.authorize(req(obj), now, ms(now), synced_at(True))


def refused(g, obj, now=T0, synced=True):
    return str(raises(AuthError, g.authorize, req(obj), now, ms(now), synced_at(synced)))


# ---- codes: once only (RFC 6238 5.2) and within the window


def test_a_code_is_accepted_once():
    g = gate()
    c = code(KEY_A)
    g.offer_code(c, T0, ms(T0), synced_at(True))
    allowed(g, {"GP17": 1})  # uses up the grant the code opened
    raises(AuthError, g.offer_code, c, T0 + 5, ms(T0 + 5), synced_at(True))
    refused(g, {"MFA": c, "GP18": 1}, T0 + 5)


def test_an_older_code_is_refused_once_a_newer_one_was_used():
    g = gate()
    g.offer_code(code(KEY_A, steps=0), T0, ms(T0), synced_at(True))
    raises(AuthError, g.offer_code, code(KEY_A, steps=-1), T0, ms(T0), synced_at(True))
    g.offer_code(code(KEY_A, steps=1), T0, ms(T0), synced_at(True))
    g.offer_code(
        code(KEY_B, steps=-1), T0, ms(T0), synced_at(True)
    )  # each key keeps its own counter


def test_codes_are_accepted_from_max_expired_steps_back_to_one_ahead():
    for steps, ok in ((-MAX_EXPIRED, True), (-MAX_EXPIRED - 1, False), (1, True), (2, False)):
        g = gate()
        if ok:
            g.offer_code(code(KEY_A, steps=steps), T0, ms(T0), synced_at(True))
        else:
            raises(AuthError, g.offer_code, code(KEY_A, steps=steps), T0, ms(T0), synced_at(True))


def test_no_code_or_signature_is_accepted_before_the_clock_is_synced():
    g = gate()
    raises(AuthError, g.offer_code, code(KEY_A), T0, ms(T0), synced_at(False))
    refused(g, {"MFA": code(KEY_B), "GP20": 1}, synced=False)
    refused(gate(), signed({SPRINKLER: 1}, T0), synced=False)


# ---- grants from {"MFA": n}


def test_a_grant_covers_only_the_pins_of_the_codes_key():
    g = gate()
    assert sorted(g.offer_code(code(KEY_B), T0, ms(T0), synced_at(True))) == [LIGHT, PORCH]
    refused(g, {"GP18": 1}, T0 + 1)
    refused(g, {"GP19": 1}, T0 + 1)
    allowed(g, {"GP17": 1}, T0 + 1)  # the refusals above did not use it up


def test_a_grant_is_consumed_by_the_first_request_that_uses_it():
    g = gate()
    assert sorted(g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))) == [LIGHT, GARAGE]
    allowed(g, {"GP16": 1}, T0 + 1)  # an open pin does not use the grant
    allowed(g, {"GP17": 1}, T0 + 1)
    refused(g, {"GP18": 1}, T0 + 1)
    refused(g, {"GP17": 0}, T0 + 1)


def test_a_grant_lasts_grant_s():
    g = gate()
    g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))
    allowed(g, {"GP18": 1}, T0 + GRANT_S - 1)
    g = gate()
    g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))
    refused(g, {"GP18": 1}, T0 + GRANT_S)


# ---- inline codes {"MFA": n, "GP18": 1}


def test_an_inline_code_authorises_exactly_its_message():
    g = gate()
    msg = {"MFA": code(KEY_A), "GP18": 1}
    allowed(g, msg)
    refused(g, {"GP18": 1})  # no grant was opened
    refused(g, msg)  # and the code is used up


def test_an_inline_code_must_belong_to_every_protected_pin():
    g = gate()
    refused(g, {"MFA": code(KEY_B), "GP18": 1})
    refused(g, {"MFA": code(KEY_B, steps=-1), "GP17": 1, "GP18": 1})
    allowed(g, {"MFA": code(KEY_A), "GP17": 1, "GP18": 1})


def test_a_wrong_inline_code_fails_even_with_a_grant_open():
    g = gate()
    g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))
    refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1}, T0 + 1)


# ---- signed commands


def test_a_signed_request_is_accepted_once():
    g = gate()
    msg = signed({SPRINKLER: 1}, T0)
    allowed(g, msg, T0 + 1)
    refused(g, msg, T0 + 2)


def test_a_signed_request_must_be_newer_than_the_last_accepted_one():
    g = gate()
    allowed(g, signed({SPRINKLER: 1}, T0))
    refused(g, signed({SPRINKLER: 0}, T0 - 1))
    refused(g, signed({SPRINKLER: 0}, T0))  # one request per key per second
    allowed(g, signed({SPRINKLER: 0}, T0 + 1), T0 + 1)


def test_a_signed_request_is_valid_within_window_s_of_its_time_stamp():
    for ts, ok in (
        (T0 - WINDOW_S, True),
        (T0 + WINDOW_S, True),
        (T0 - WINDOW_S - 1, False),
        (T0 + WINDOW_S + 1, False),
    ):
        g = gate()
        if ok:
            allowed(g, signed({SPRINKLER: 1}, ts))
        else:
            refused(g, signed({SPRINKLER: 1}, ts))


def test_a_tampered_signed_request_is_refused():
    good = signed({SPRINKLER: 1, OPEN: 0}, T0)
    flipped = good["SIG"][:10] + ("0" if good["SIG"][10] != "0" else "1") + good["SIG"][11:]
    tampered = [
        dict(good, GP19=0),  # value changed
        dict(good, GP20=1),  # pin added
        dict((k, v) for k, v in good.items() if k != "GP16"),  # pin dropped
        dict(good, TS=T0 + 1),  # time stamp moved
        dict(good, SIG=flipped),
        signed({SPRINKLER: 1, OPEN: 0}, T0, topic="home/other"),  # made for another device
        signed({SPRINKLER: 1, OPEN: 0}, T0, key=OTHER),  # a key not listed for GP19
    ]
    for msg in tampered:
        g = gate()
        refused(g, msg)
        allowed(g, good)  # the refusal did not burn the genuine request's time stamp


# ---- what each pin requires


def test_pin_policies_totp_only_signature_only_either_or_nothing():
    allowed(gate(), {"GP16": 1})
    # TOTP only: a stolen scheduler key cannot open the garage.
    refused(gate(), signed({GARAGE: 1}, T0))
    # Signature only: no code or grant moves the sprinkler.
    refused(gate(), {"MFA": code(KEY_A), "GP19": 1})
    g = gate()
    g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))
    refused(g, {"GP19": 1})
    # Either: a code of its key or the scheduler's signature.
    allowed(gate(), {"MFA": code(KEY_B), "GP20": 1})
    allowed(gate(), signed({PORCH: 1}, T0))
    refused(gate(), {"GP20": 1})


def test_a_request_needs_every_protected_pin_authorised():
    refused(gate(), signed({SPRINKLER: 1, GARAGE: 1}, T0))
    allowed(gate(), dict(signed({SPRINKLER: 1, GARAGE: 1}, T0), MFA=code(KEY_A)))
    allowed(gate(), signed({SPRINKLER: 1, OPEN: 1}, T0))


# ---- brute force


def locked_for(message):
    """N from "... (locked for Ns after repeated failures)", or None."""
    mark = "(locked for "
    if mark not in message:
        return None
    return int(message.split(mark)[1].split("s")[0])


def test_repeated_failures_lock_the_pin_even_against_a_correct_code():
    g = gate()
    for i in range(FAILURES - 1):
        assert refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1}) == DENIED
    assert locked_for(refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1})) == LOCKOUT_S
    good = {"MFA": code(KEY_A), "GP18": 1}
    assert locked_for(refused(g, good, T0 + LOCKOUT_S - 1)) == 1
    # A valid code is spent even when refused (SECURITY.md, finding 2.1): not for another pin of
    # its key, and not for the same pin after the lockout.
    assert refused(g, {"MFA": code(KEY_A), "GP17": 1}, T0 + LOCKOUT_S - 1) == DENIED
    assert refused(g, good, T0 + LOCKOUT_S) == DENIED
    allowed(g, {"MFA": code(KEY_A, steps=1), "GP18": 1}, T0 + LOCKOUT_S + 1)


def test_a_signature_refused_for_a_lockout_is_spent():
    g = gate()
    for i in range(FAILURES):
        refused(g, {"GP20": 1})
    request = signed({PORCH: 1}, T0)
    assert locked_for(refused(g, request))
    assert refused(g, request, T0 + LOCKOUT_S) == DENIED
    allowed(g, signed({PORCH: 1}, T0 + LOCKOUT_S), T0 + LOCKOUT_S)


def test_lockouts_and_grants_run_on_the_monotonic_clock():
    g = gate()
    for i in range(FAILURES):
        refused(g, {"GP18": 1})
    # The wall clock steps an hour ahead (NTP): the lockout still has its full length.
    e = raises(AuthError, g.authorize, req({"GP18": 1}), T0 + 3600, ms(T0), synced_at(True))
    assert locked_for(str(e)) == LOCKOUT_S
    g.offer_code(code(KEY_A, steps=1), T0, ms(T0 + LOCKOUT_S), synced_at(True))
    # ... and a grant is not cut short by a step, nor stretched by one back.
    g.authorize(req({"GP17": 1}), T0 + 3600, ms(T0 + LOCKOUT_S + GRANT_S - 1), synced_at(True))
    g.offer_code(code(KEY_B), T0, ms(T0 + 100), synced_at(True))
    e = raises(
        AuthError,
        g.authorize,
        req({"GP17": 1}),
        T0 - 3600,
        ms(T0 + 100 + GRANT_S),
        synced_at(True),
    )
    assert str(e) == DENIED


def test_codes_and_signatures_from_before_the_first_sync_are_refused():
    """Nothing of a previous boot survives a reset or power cut: codes of the first sync's time
    step or older, and time stamps up to the sync, are refused (SECURITY.md, finding 2.9)."""
    g = gate()
    at = totp.counter_at(T0) * 30  # the first sync, at the start of T0's step
    for steps in (-1, 0):
        assert (
            str(raises(AuthError, g.offer_code, code(KEY_A, steps=steps), T0, ms(T0), at))
            == DENIED
        )
    g.offer_code(code(KEY_A, steps=1), T0, ms(T0), at)  # one step ahead: after the sync
    early = req(signed({SPRINKLER: 1}, at))
    assert str(raises(AuthError, g.authorize, early, T0, ms(T0), at)) == DENIED
    g.authorize(req(signed({SPRINKLER: 1}, at + 1)), T0, ms(T0), at)


def test_the_lockout_doubles_each_time_up_to_an_hour():
    g = gate()
    now, expected, seen = T0, LOCKOUT_S, []
    while True:
        for i in range(FAILURES):
            message = refused(g, {"MFA": wrong_code(KEY_A, now), "GP18": 1}, now)
        seen.append(locked_for(message))
        assert seen[-1] == expected, seen
        assert locked_for(refused(g, {"MFA": code(KEY_A, now), "GP18": 1}, now + expected - 1))
        now += expected
        if expected == MAX_LOCKOUT_S:
            break
        expected = min(MAX_LOCKOUT_S, expected * 2)
    assert len(seen) > 3 and seen[-1] == MAX_LOCKOUT_S


def test_a_success_resets_the_failure_count():
    g = gate()
    for i in range(FAILURES - 1):
        refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1})
    allowed(g, {"MFA": code(KEY_A), "GP18": 1})
    for i in range(FAILURES - 1):
        assert refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1}) == DENIED
    allowed(g, {"MFA": code(KEY_A, steps=1), "GP18": 1})


def test_a_locked_pin_does_not_lock_other_pins_or_bare_codes():
    g = gate()
    for i in range(FAILURES):
        refused(g, {"MFA": wrong_code(KEY_A), "GP18": 1})
    assert locked_for(refused(g, {"GP18": 1}))
    allowed(g, {"MFA": code(KEY_B), "GP17": 1})
    allowed(g, signed({SPRINKLER: 1}, T0))
    g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))


def test_guessing_bare_codes_locks_bare_codes():
    g = gate()
    for i in range(FAILURES):
        e = raises(AuthError, g.offer_code, wrong_code(KEY_A), T0, ms(T0), synced_at(True))
    assert locked_for(str(e)) == LOCKOUT_S
    assert locked_for(
        str(raises(AuthError, g.offer_code, code(KEY_A), T0 + 1, ms(T0 + 1), synced_at(True)))
    )
    # The refused code is spent; inline codes are counted per pin, so a fresh one works there.
    assert refused(g, {"MFA": code(KEY_A), "GP18": 1}, T0 + 1) == DENIED
    allowed(g, {"MFA": code(KEY_A, steps=1), "GP18": 1}, T0 + 1)
    g.offer_code(code(KEY_B, steps=1), T0 + LOCKOUT_S, ms(T0 + LOCKOUT_S), synced_at(True))


def test_every_refusal_reads_the_same():
    """Nothing says which part was wrong: code, key, replay, age or signature."""
    replayed_code = gate()
    replayed_code.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))
    allowed(replayed_code, {"GP17": 1})
    replayed_sig = gate()
    allowed(replayed_sig, signed({SPRINKLER: 1}, T0))
    messages = [
        refused(gate(), {"GP18": 1}),
        refused(gate(), {"MFA": wrong_code(KEY_A), "GP18": 1}),
        refused(gate(), {"MFA": code(KEY_B), "GP18": 1}),
        refused(replayed_code, {"MFA": code(KEY_A), "GP18": 1}),
        refused(gate(), signed({SPRINKLER: 1}, T0 - WINDOW_S - 1)),
        refused(gate(), dict(signed({SPRINKLER: 1}, T0), GP19=0)),
        refused(replayed_sig, signed({SPRINKLER: 1}, T0)),
        refused(gate(), {"MFA": code(KEY_A), "GP18": 1}, synced=False),
        str(raises(AuthError, gate().offer_code, wrong_code(KEY_A), T0, ms(T0), synced_at(True))),
    ]
    assert messages == [DENIED] * len(messages), messages


# ---- a raised floor: what the device may not have seen is useless


def test_a_raised_floor_refuses_codes_and_time_stamps_up_to_it_and_closes_the_grant():
    g = gate()
    assert sorted(g.offer_code(code(KEY_A), T0, ms(T0), synced_at(True))) == [LIGHT, GARAGE]
    unseen = code(KEY_B)  # sent in this step, dropped by the broker: the device never saw it
    ts = T0 - 1
    g.raise_floor(T0 + 1)
    refused(g, {"GP17": 1}, T0 + 2)  # the grant is gone
    refused(g, {"GP17": 1, "MFA": unseen}, T0 + 2)
    refused(g, signed({SPRINKLER: 1}, ts), T0 + 2)
    refused(g, signed({SPRINKLER: 1}, T0 + 1), T0 + 2)
    allowed(g, signed({SPRINKLER: 1}, T0 + 2), T0 + 2)
    ahead = code(KEY_B, steps=1)  # from a phone a step ahead: the device took it at T0 too
    refused(g, {"GP20": 1, "MFA": ahead}, T0 + 30)
    allowed(g, {"GP20": 1, "MFA": code(KEY_B, steps=2)}, T0 + 60)
