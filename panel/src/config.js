// SPDX-License-Identifier: MIT
// The device's config.json, opened once in the page, read for what the panel needs: the pin
// layout, and the TOTP/sign keys if the user chooses to keep them. The Wi-Fi section and the
// broker password are never read.
const pinList = (v) => (Array.isArray(v) ? v.map(Number).filter(Number.isInteger) : []);

function momentary(v) {
  if (Array.isArray(v)) return Object.fromEntries(pinList(v).map((p) => [p, 2])); // seed style
  return Object.fromEntries(Object.entries(v || {}).map(([p, s]) => [Number(p), Number(s)]));
}

export function readConfig(text) {
  let cfg;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new Error("config.json is not valid JSON: " + e.message);
  }
  const mqtt = cfg && cfg.mqtt;
  const gpio = cfg && cfg.gpio;
  if (!mqtt || typeof mqtt.topic !== "string" || !mqtt.topic || !gpio) {
    throw new Error("config.json has no mqtt.topic or no gpio section");
  }
  const mfa = cfg.mfa || {};
  const sign = cfg.sign || {};
  const mfaPins = mfa.pins || {};
  const signPins = sign.pins || {};
  const signKeys = sign.keys || {};
  const layout = {
    topic: mqtt.topic,
    prefix: gpio.prefix || "GP",
    keyname: mfa.keyname || "MFA",
    relay: pinList(gpio.relay),
    momentary: momentary(gpio.momentary),
    contact: pinList(gpio.contact),
    notify: pinList(gpio.notify),
    totpPins: Object.keys(mfaPins).map(Number),
    signPins: Object.keys(signPins).map(Number),
  };
  if (!layout.relay.length && !Object.keys(layout.momentary).length && !layout.contact.length) {
    throw new Error("config.json configures no relay, momentary or contact pin");
  }
  // One key per protected pin is enough to authorise it: the first one the device accepts.
  const keys = { totp: {}, sign: {} };
  for (const [pin, list] of Object.entries(mfaPins)) {
    if (Array.isArray(list) && typeof list[0] === "string") keys.totp[pin] = list[0];
  }
  for (const [pin, names] of Object.entries(signPins)) {
    const name = (Array.isArray(names) ? names : []).find((n) => typeof signKeys[n] === "string");
    if (name) keys.sign[pin] = { name, key: signKeys[name] };
  }
  const server = typeof mqtt.server === "string" ? mqtt.server : "";
  const broker = {
    url: mqtt.ssl ? "wss://" + server + ":8884/mqtt" : "ws://" + server + ":9001",
    user: typeof mqtt.user === "string" ? mqtt.user : "",
  };
  return { layout, keys, broker };
}
