# SPDX-License-Identifier: MIT
# Who may move a protected pin: TOTP codes (used once), short grants, signed commands
# for programs, and a growing lockout against guessing.
# Two clocks: `unix_s` is whole unix seconds (clock.py) for what the client stamps (TOTP steps,
# TS); `mono_ms` is the controller's monotonic milliseconds for what the device times itself
# (lockouts, grants), which an NTP step must not shorten or stretch.
from . import totp
from .guard import ceil_s
from .protocol import canonical

DENIED = "Error: MFA validation failed, GPIO cannot be set"
MAX_LOCKOUT_S = 3600


class AuthError(Exception):
    pass


def _same(a, b):
    """Constant-time string comparison, so a signature cannot be guessed byte by byte."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= ord(x) ^ ord(y)
    return diff == 0


class Failures:
    """Guessing record of one pin (or of bare codes): failures since the last success or
    lockout, when the current lockout ends (monotonic ms), and how many lockouts so far."""

    def __init__(self):
        self.count = 0
        self.locked_until = 0
        self.lockouts = 0


class AuthGate:
    def __init__(self, cfg, topic):
        mfa, sign, guard = cfg["mfa"], cfg["sign"], cfg["guard"]
        self.topic = topic
        self.prefix = cfg["gpio"]["prefix"]
        self.totp_pins = mfa["pins"]  # pin -> [raw key]
        self.max_expired = mfa["max_expired_codes"]
        self.grant_ms = mfa["grant_s"] * 1000
        self.sign_pins = sign["pins"]  # pin -> [key name]
        self.sign_keys = dict((n, k.encode()) for n, k in sign["keys"].items())
        self.sign_window_s = sign["window_s"]
        self.max_failures = guard["auth_failures"]
        self.lockout_ms = guard["auth_lockout_s"] * 1000
        # Replay memory, per key (RFC 6238 5.2): the last time step accepted per raw TOTP key,
        # the last TS per signing key (not per name: one key under two names is one key).
        self._last_counter = {}
        self._last_ts = {}
        self._grant = None  # (pins, expires at, monotonic ms)
        self._failures = {}  # pin, or None for bare codes -> Failures
        self._floor = 0  # unix time: codes of its time step and time stamps up to it are refused

    def raise_floor(self, unix_s):
        """The device may not have seen every message until `unix_s` (a broker drops what it
        cannot queue for a device behind it): a code or signed request it never saw must be
        useless to whoever read it on the broker, as after a boot. Closes any open grant."""
        self._floor = max(self._floor, unix_s)
        self._grant = None

    def protected(self, pins):
        return [p for p in pins if p in self.totp_pins or p in self.sign_pins]

    def _locked_for(self, keys, mono_ms):
        left = 0
        for k in keys:
            f = self._failures.get(k)
            if f and f.locked_until > mono_ms:
                left = max(left, f.locked_until - mono_ms)
        return left

    def _failure(self, keys, mono_ms):
        """Count a failure against `keys`; the AuthError for the caller to raise."""
        for k in keys:
            f = self._failures.get(k)
            if f is None:
                f = self._failures[k] = Failures()
            f.count += 1
            if f.count >= self.max_failures:
                f.count = 0
                f.locked_until = mono_ms + min(MAX_LOCKOUT_S * 1000, self.lockout_ms << f.lockouts)
                f.lockouts += 1  # each lockout doubles the next
        return self._lock_error(keys, mono_ms) or AuthError(DENIED)

    def _lock_error(self, keys, mono_ms):
        left = self._locked_for(keys, mono_ms)
        if left:
            return AuthError(DENIED + " (locked for %ds after repeated failures)" % ceil_s(left))
        return None

    # ---- spending: every valid code or signature the device sees is used up, whatever
    # becomes of the request it came with, so one seen on the topic
    # cannot be redirected to another pin or replayed after a lockout.

    def _spend_code(self, code, unix_s, first_sync):
        """The keys `code` is a fresh valid code for, now used up."""
        if code is None or first_sync is None:
            return []
        # Codes of the time step of the clock's first sync on this boot, and older ones, are
        # refused: used before a reset or power cut, or seen before the clock could check them,
        # they left no trace in RAM. Likewise up to a raised floor.
        floor = totp.counter_at(first_sync)
        if self._floor:  # what could have been valid then, a code from a clock ahead too
            floor = max(floor, totp.counter_at(self._floor) + totp.FUTURE_CODES)
        keys = []
        for key in self._all_keys():
            c = totp.match(key, code, unix_s, self.max_expired)
            if c > floor and c > self._last_counter.get(key, -1):
                self._last_counter[key] = c
                keys.append(key)
        return keys

    def _spend_signature(self, req, unix_s, first_sync):
        """The signing keys that signed `req` with a fresh TS inside the window, now used up.
        A valid signature is spent even before the clock is synced, when its TS cannot be
        checked yet."""
        if req.ts is None:
            return []
        msg = canonical(self.topic, req.ts, req.pins, self.prefix).encode()
        names = []
        for p in self.protected(req.pins):
            for name in self.sign_pins.get(p, ()):
                if name not in names:
                    names.append(name)
        signers = []
        for name in names:
            key = self.sign_keys[name]
            if req.ts <= self._last_ts.get(key, 0):
                continue
            expected = "".join("%02x" % b for b in totp.hmac_sha256(key, msg))
            if _same(expected, req.sig):
                self._last_ts[key] = req.ts
                if (
                    first_sync is not None
                    and abs(unix_s - req.ts) <= self.sign_window_s
                    and req.ts > max(first_sync, self._floor)
                ):  # see _spend_code
                    signers.append(name)
        return signers

    def _all_keys(self):
        keys = []
        for ks in self.totp_pins.values():
            for k in ks:
                if k not in keys:
                    keys.append(k)
        return keys

    def offer_code(self, code, unix_s, mono_ms, first_sync):
        """A bare {"MFA": n}: opens a grant for the pins its key protects. `first_sync` is the
        unix time the clock was first synced on this boot, None before."""
        keys = self._spend_code(code, unix_s, first_sync)
        e = self._lock_error((None,), mono_ms)
        if e:
            raise e
        if not keys:
            raise self._failure((None,), mono_ms)
        pins = [p for p, ks in self.totp_pins.items() if any(k in ks for k in keys)]
        self._grant = (pins, mono_ms + self.grant_ms)
        self._failures.pop(None, None)
        return pins

    def authorize(self, req, unix_s, mono_ms, first_sync):
        """Raises AuthError unless every protected pin in `req` is authorised. Spends what it
        sees (the inline code's time step, the signature's time stamp) and, if the request
        is carried out, the grant it used."""
        inline = self._spend_code(req.code, unix_s, first_sync)
        signers = self._spend_signature(req, unix_s, first_sync)
        need = self.protected(req.pins)
        if not need:
            return
        e = self._lock_error(need, mono_ms)
        if e:
            raise e
        if first_sync is None:
            raise self._failure(need, mono_ms)
        opens = [p for p in need if any(k in self.totp_pins.get(p, ()) for k in inline)]
        if req.code is not None and not opens:
            raise self._failure(need, mono_ms)  # a wrong code fails even where a grant would do
        grant = self._grant if self._grant and self._grant[1] > mono_ms else None
        used_grant = False
        for p in need:
            if p in opens:
                continue
            if any(n in self.sign_pins.get(p, ()) for n in signers):
                continue
            if grant and p in grant[0]:
                used_grant = True
                continue
            raise self._failure(need, mono_ms)
        if used_grant:
            self._grant = None
        for p in need:
            self._failures.pop(p, None)
