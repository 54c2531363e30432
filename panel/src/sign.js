// SPDX-License-Identifier: MIT
// Signed requests, as tools/sign.py makes them and modules/tinyctrl/auth.py checks them:
// {"GP20": 1, "TS": <unix s>, "SIG": HMAC-SHA256(key, canonical text) in hex}.

// protocol.canonical(): "topic|ts|GP20=1,GP21=0", pins sorted by number.
export function canonical(topic, ts, pins, prefix) {
  const parts = Object.keys(pins).map(Number).sort((a, b) => a - b)
    .map((p) => prefix + p + "=" + pins[p]);
  return topic + "|" + ts + "|" + parts.join(",");
}

export async function signedRequest(keyText, topic, pins, prefix, ts) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw", enc.encode(keyText), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, enc.encode(canonical(topic, ts, pins, prefix)));
  const request = {};
  for (const p of Object.keys(pins)) request[prefix + p] = pins[p];
  request.TS = ts;
  request.SIG = Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
  return request;
}
