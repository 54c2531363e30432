// SPDX-License-Identifier: MIT
// TOTP codes as the device checks them (modules/tinyctrl/totp.py): RFC 6238 with HMAC-SHA1,
// 30 s steps, 6 digits; keys in RFC 4648 Base32, as authenticator apps show them.
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
export const STEP_S = 30;
const MIN_KEY_BYTES = 10; // 80 bits, the device's own minimum (config.py)

export function base32Decode(text) {
  const clean = text.toUpperCase().replace(/[\s-]/g, "").replace(/=+$/, "");
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of clean) {
    const i = ALPHABET.indexOf(c);
    if (i < 0) throw new Error("the key is not Base32 (letters A-Z and digits 2-7)");
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  if (out.length < MIN_KEY_BYTES) throw new Error("the key is shorter than 16 Base32 characters");
  return new Uint8Array(out);
}

// A Base32 key from an otpauth://totp/... URI (Google Authenticator's Key Uri Format) or
// the key itself; refuses parameters the device does not support.
export function parseKey(text) {
  const input = text.trim();
  if (!input.toLowerCase().startsWith("otpauth:")) {
    base32Decode(input);
    return input.toUpperCase().replace(/[\s-]/g, "").replace(/=+$/, "");
  }
  let url;
  try {
    url = new URL(input);
  } catch {
    throw new Error("not a valid otpauth:// URI");
  }
  if (url.host.toLowerCase() !== "totp") throw new Error("only otpauth://totp/ keys are supported");
  const p = url.searchParams;
  const algorithm = (p.get("algorithm") || "SHA1").toUpperCase();
  if (algorithm !== "SHA1") throw new Error("the device checks SHA1 codes, this key uses " + algorithm);
  if ((p.get("digits") || "6") !== "6") throw new Error("the device checks 6-digit codes");
  if ((p.get("period") || "30") !== "30") throw new Error("the device checks 30 s codes");
  const secret = p.get("secret");
  if (!secret) throw new Error("the otpauth URI has no secret");
  return parseKey(secret);
}

// The code for `nowS` (unix seconds) and its time step (RFC 6238 section 4).
export async function totp(base32, nowS) {
  const counter = Math.floor(nowS / STEP_S);
  const msg = new DataView(new ArrayBuffer(8));
  msg.setUint32(0, Math.floor(counter / 2 ** 32));
  msg.setUint32(4, counter >>> 0);
  const key = await crypto.subtle.importKey(
    "raw", base32Decode(base32), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg.buffer));
  const off = mac[mac.length - 1] & 0x0f; // RFC 4226 section 5.3, dynamic truncation
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return { code: bin % 1000000, counter };
}
