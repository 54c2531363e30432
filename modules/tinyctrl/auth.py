# Who may move a protected pin: TOTP codes (used once), short grants, signed commands
# for programs, and a growing lockout against guessing. Times are whole unix seconds (clock.py).
from . import totp
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


class AuthGate:
    def __init__(self, cfg, topic):
        mfa, sign, guard = cfg["mfa"], cfg["sign"], cfg["guard"]
        self.topic = topic
        self.prefix = cfg["gpio"]["prefix"]
        self.totp_pins = mfa["pins"]  # pin -> [raw key]
        self.max_expired = mfa["max_expired_codes"]
        self.grant_s = mfa["grant_s"]
        self.sign_pins = sign["pins"]  # pin -> [key name]
        self.sign_keys = dict((n, k.encode()) for n, k in sign["keys"].items())
        self.sign_window_s = sign["window_s"]
        self.max_failures = guard["auth_failures"]
        self.lockout_s = guard["auth_lockout_s"]
        self._last_counter = {}  # raw key -> last accepted time step (RFC 6238 5.2)
        self._last_ts = {}  # key name -> last accepted TS
        self._grant = None  # (pins, expires)
        self._failures = {}  # pin, or None for bare codes -> [count, locked_until, lockouts]

    def protected(self, pins):
        return [p for p in pins if p in self.totp_pins or p in self.sign_pins]

    def _locked_for(self, keys, now):
        left = 0
        for k in keys:
            f = self._failures.get(k)
            if f and f[1] > now:
                left = max(left, f[1] - now)
        return left

    def _fail(self, keys, now):
        for k in keys:
            f = self._failures.setdefault(k, [0, 0, 0])
            f[0] += 1
            if f[0] >= self.max_failures:
                f[0] = 0
                f[1] = now + min(MAX_LOCKOUT_S, self.lockout_s << f[2])  # doubles each time
                f[2] += 1
        self._check_locks(keys, now)
        raise AuthError(DENIED)

    def _check_locks(self, keys, now):
        left = self._locked_for(keys, now)
        if left:
            raise AuthError(DENIED + " (locked for %ds after repeated failures)" % left)

    def _code_key(self, code, keys, now):
        """The key `code` is a fresh valid code for, after recording its use; else None."""
        for key in keys:
            c = totp.match(key, code, now, self.max_expired)
            if c >= 0 and c > self._last_counter.get(key, -1):
                self._last_counter[key] = c
                return key
        return None

    def _all_keys(self):
        keys = []
        for ks in self.totp_pins.values():
            for k in ks:
                if k not in keys:
                    keys.append(k)
        return keys

    def offer_code(self, code, now, synced):
        """A bare {"MFA": n}: opens a grant for the pins its key protects."""
        self._check_locks((None,), now)
        key = self._code_key(code, self._all_keys(), now) if synced else None
        if key is None:
            self._fail((None,), now)
        pins = [p for p, ks in self.totp_pins.items() if key in ks]
        self._grant = (pins, now + self.grant_s)
        self._failures.pop(None, None)
        return pins

    def _signed_by(self, req, pin, now):
        if req.ts is None or abs(now - req.ts) > self.sign_window_s:
            return None
        msg = canonical(self.topic, req.ts, req.pins, self.prefix).encode()
        for name in self.sign_pins.get(pin, ()):
            if req.ts > self._last_ts.get(name, 0):
                expected = "".join("%02x" % b for b in totp.hmac_sha256(self.sign_keys[name], msg))
                if _same(expected, req.sig):
                    return name
        return None

    def authorize(self, req, now, synced):
        """Raises AuthError unless every protected pin in `req` is authorised. Consumes
        what it uses: the grant, the inline code's time step, the signature's time stamp."""
        need = self.protected(req.pins)
        if not need:
            return
        self._check_locks(need, now)
        if not synced:
            self._fail(need, now)
        inline = None
        if req.code is not None:
            keys = []
            for p in need:
                for k in self.totp_pins.get(p, ()):
                    if k not in keys:
                        keys.append(k)
            inline = self._code_key(req.code, keys, now)
            if inline is None:  # a wrong code fails even where a grant or signature would do
                self._fail(need, now)
        grant = self._grant if self._grant and self._grant[1] > now else None
        signers = []
        used_grant = False
        for p in need:
            if inline is not None and inline in self.totp_pins.get(p, ()):
                continue
            name = self._signed_by(req, p, now)
            if name is not None:
                signers.append(name)
                continue
            if grant and p in grant[0]:
                used_grant = True
                continue
            self._fail(need, now)
        for name in signers:
            self._last_ts[name] = req.ts
        if used_grant:
            self._grant = None
        for p in need:
            self._failures.pop(p, None)
