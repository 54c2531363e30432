// SPDX-License-Identifier: MIT
// The phone panel: set-up from the device's config.json, unlock with a passphrase,
// then live pins over MQTT. A protected pin's request carries its own proof: a fresh TOTP code
// ({"MFA": 123456, "GP18": 1}) or a signature ({"GP20": 1, "TS": ..., "SIG": ...}); a bare
// {"MFA": n}, which would open a grant any client could use, is never sent.
import { readConfig } from "./config.js";
import { Device } from "./device.js";
import { forget, loadSettings, loadVault, save, unseal, WrongPassphrase } from "./keystore.js";
import { signedRequest } from "./sign.js";
import { parseKey, STEP_S, totp } from "./totp.js";
import * as ui from "./ui.js";

const $ = (id) => document.getElementById(id);
const CLOCK_TOLERANCE_S = 30; // one TOTP step; the device also bounds signed requests' TS
const ANSWER_MS = 15000; // the device answers a refresh within this, unless it is offline

const app = {
  settings: null, // {layout, broker: {url, user}}: not secret
  secrets: null, // {password, totp: {pin: base32}, sign: {pin: {name, key}}}: sealed at rest
  passphrase: null, // in memory while unlocked, to re-seal after a key is added
  device: null,
  pins: {},
  lastStep: {}, // base32 key -> last time step sent: the device accepts each code once
  lastTs: 0, // the device accepts a signer's TS only if it is newer than the last
  clockSkewS: null, // this browser's clock minus the web server's (the Date header)
  answerTimer: null,
  config: null,
};

const nowS = () => Date.now() / 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function guard(pin) {
  const { totpPins, signPins } = app.settings.layout;
  return totpPins.includes(pin) ? "TOTP" : signPins.includes(pin) ? "signed" : "";
}

// The request that sets `pin`, with the code or signature its guard needs.
async function request(pin, value) {
  const { layout } = app.settings;
  const name = layout.prefix + pin;
  const totpKey = layout.totpPins.includes(pin) && app.secrets.totp[pin];
  if (totpKey) {
    let { code, counter } = await totp(totpKey, nowS());
    if (counter <= (app.lastStep[totpKey] ?? -1)) {
      const wait = (counter + 1) * STEP_S - nowS();
      ui.notice("Waiting " + Math.ceil(wait) + " s for a fresh code (each code works once)");
      await sleep(wait * 1000 + 100);
      ({ code, counter } = await totp(totpKey, nowS()));
      ui.notice("");
    }
    app.lastStep[totpKey] = counter;
    return { [layout.keyname]: code, [name]: value };
  }
  const signer = layout.signPins.includes(pin) && app.secrets.sign[pin];
  if (signer) {
    const ts = Math.max(Math.floor(nowS()), app.lastTs + 1);
    app.lastTs = ts;
    return signedRequest(signer.key, layout.topic, { [pin]: value }, layout.prefix, ts);
  }
  if (guard(pin)) {
    throw new Error(name + " needs a " + (guard(pin) === "TOTP" ? "TOTP key" : "sign key")
      + ": add it under Keys, or open the config.json with its keys");
  }
  return { [name]: value };
}

async function press(pin, kind) {
  try {
    const value = kind === "momentary" ? 1 : app.pins[pin] === 1 ? 0 : 1;
    app.device.send(await request(pin, value));
  } catch (e) {
    ui.alert(e.message, "request");
  }
}

function onText(text) {
  ui.log(text, text.startsWith("Error:") ? "error" : "info");
  if (text.startsWith("Error:")) {
    let hint = "";
    if (text.includes("MFA validation failed")) {
      // The device takes each code once, and after a restart none from the 30 s step its clock
      // first synced in (SECURITY.md, "Replay"): the refused code's step counts as used, so the
      // next press waits for the next code.
      hint = app.clockSkewS !== null && Math.abs(app.clockSkewS) > CLOCK_TOLERANCE_S
        ? " This phone's clock is " + Math.round(app.clockSkewS) + " s off: set it automatically."
        : " If the device restarted less than 30 s ago it takes only the next code: press again"
          + " and the page waits for it. Otherwise check the pin's key and this phone's clock.";
    }
    ui.alert("Refused by the device: " + text + hint, "device");
  } else {
    ui.notice(text);
  }
}

function startDevice() {
  const { layout, broker } = app.settings;
  ui.renderPins(layout, guard, press);
  ui.renderKeys(layout, app.secrets);
  ui.show("panel");
  const device = new Device(layout);
  app.device = device;
  device.addEventListener("link", ({ detail }) => {
    if (detail.state === "connected") {
      ui.badge("link", "broker connected", "ok");
      ui.clearAlert("broker");
      // Its last will reached only clients connected at the time: silence means offline too.
      clearTimeout(app.answerTimer);
      app.answerTimer = setTimeout(() => ui.badge("device", "device not answering", "bad"), ANSWER_MS);
    } else if (detail.state === "connecting") {
      ui.badge("link", "connecting", "wait");
    } else if (detail.state === "unreachable") {
      ui.badge("link", "broker unreachable", "bad");
      ui.badge("device", "device ?", "wait");
      ui.alert("Broker unreachable at " + detail.url + " (retrying every 5 s)", "broker");
    } else {
      ui.badge("link", "broker error", "bad");
      ui.alert("Broker error: " + detail.reason, "broker");
    }
  });
  device.addEventListener("online", ({ detail }) => {
    clearTimeout(app.answerTimer);
    ui.badge("device", "device " + detail, detail === "online" ? "ok" : "bad");
    if (detail !== "online") ui.log("device " + detail, "error");
  });
  device.addEventListener("state", ({ detail }) => {
    for (const [pin, value] of Object.entries(detail)) {
      if (app.pins[pin] !== value) ui.flash(pin);
      app.pins[pin] = value;
      ui.showPin(pin, value);
    }
    ui.clearAlert("request");
  });
  device.addEventListener("notify", ({ detail }) => {
    const text = Object.entries(detail).map(([p, v]) => layout.prefix + p + "=" + v).join(", ");
    ui.log("NOTIFY " + text, "notify");
    ui.notice("NOTIFY " + text);
  });
  device.addEventListener("text", ({ detail }) => onText(detail));
  device.addEventListener("sent", ({ detail }) => {
    ui.clearAlert("device"); // a refusal is about the request before this one
    ui.clearAlert("request");
    // The log shows what was sent without the code or signature.
    const shown = Object.keys(detail).filter((k) => k !== layout.keyname && k !== "TS" && k !== "SIG")
      .map((k) => k + "=" + detail[k]).join(", ");
    ui.log("sent " + shown, "sent");
  });
  device.connect(broker.url, broker.user, app.secrets.password);
}

async function onConfigFile() {
  const file = $("config-file").files[0];
  if (!file) return;
  try {
    app.config = readConfig(await file.text());
    const { layout, keys, broker } = app.config;
    $("broker-url").value = $("broker-url").value || broker.url;
    $("broker-user").value = $("broker-user").value || broker.user;
    const count = Object.keys(keys.totp).length + Object.keys(keys.sign).length;
    $("config-summary").textContent = "Topic " + layout.topic + ": " + layout.relay.length + " relays, "
      + Object.keys(layout.momentary).length + " momentary, " + layout.contact.length + " contacts"
      + (count ? ", " + count + " protected pins with keys" : "") + ".";
    ui.clearAlert("setup");
  } catch (e) {
    app.config = null;
    $("config-summary").textContent = "";
    ui.alert(e.message, "setup");
  }
}

async function onSetup(event) {
  event.preventDefault();
  if (!app.config) return ui.alert("Open the device's config.json first", "setup");
  const url = $("broker-url").value.trim();
  if (!/^wss?:\/\//.test(url)) return ui.alert("The broker URL starts with wss:// (or ws://)", "setup");
  const keep = $("keep-keys").checked;
  app.settings = { layout: app.config.layout, broker: { url, user: $("broker-user").value.trim() } };
  app.secrets = {
    password: $("broker-password").value,
    totp: keep ? app.config.keys.totp : {},
    sign: keep ? app.config.keys.sign : {},
  };
  app.passphrase = $("setup-passphrase").value;
  $("setup-form").reset();
  app.config = null;
  ui.notice("Encrypting…");
  await save(app.settings, app.secrets, app.passphrase);
  ui.notice("");
  ui.clearAlert("setup");
  startDevice();
}

async function onUnlock(event) {
  event.preventDefault();
  const passphrase = $("unlock-passphrase").value;
  ui.notice("Unlocking…");
  try {
    app.secrets = await unseal(passphrase, loadVault());
  } catch (e) {
    ui.notice("");
    return ui.alert(e instanceof WrongPassphrase ? "Wrong passphrase" : "Cannot unlock: " + e.message, "unlock");
  }
  $("unlock-form").reset();
  ui.notice("");
  ui.clearAlert("unlock");
  app.passphrase = passphrase;
  startDevice();
}

async function addKey(text) {
  const pin = Number($("key-pin").value);
  try {
    app.secrets.totp[pin] = parseKey(text);
  } catch (e) {
    return ui.alert("Key not added: " + e.message, "key");
  }
  $("key-text").value = "";
  await save(app.settings, app.secrets, app.passphrase);
  ui.renderKeys(app.settings.layout, app.secrets);
  ui.clearAlert("key");
  ui.notice("Key stored for " + app.settings.layout.prefix + pin);
}

// A QR code from the camera or a photo, where the browser can read one (BarcodeDetector).
async function onKeyImage() {
  const file = $("key-image").files[0];
  $("key-image").value = "";
  if (!file) return;
  try {
    const codes = await new window.BarcodeDetector({ formats: ["qr_code"] }).detect(await createImageBitmap(file));
    if (!codes.length) throw new Error("no QR code found in the picture");
    await addKey(codes[0].rawValue);
  } catch (e) {
    ui.alert("Key not added: " + e.message, "key");
  }
}

function reset() {
  if (app.device) app.device.close();
  forget();
  location.reload();
}

// The web server's Date header is the page's one clock reference: TOTP codes and signed
// requests from a clock more than a step off are refused by the device.
async function checkClock() {
  try {
    const response = await fetch(location.href, { method: "HEAD", cache: "no-store" });
    const served = Date.parse(response.headers.get("Date"));
    if (Number.isNaN(served)) return;
    app.clockSkewS = (Date.now() - served) / 1000;
    if (Math.abs(app.clockSkewS) > CLOCK_TOLERANCE_S) {
      ui.alert("This phone's clock is " + Math.round(app.clockSkewS) + " s off: the device will refuse "
        + "its TOTP codes and signatures. Set the clock automatically.", "clock");
    }
  } catch {
    // No reference (e.g. an offline copy): the device's refusal still says so.
  }
}

function main() {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
    ui.alert("Open this page over https or from localhost (./build.sh panel --serve): browsers "
      + "allow WebCrypto, which computes the codes, only there.");
    return;
  }
  $("config-file").addEventListener("change", onConfigFile);
  $("setup-form").addEventListener("submit", onSetup);
  $("unlock-form").addEventListener("submit", onUnlock);
  $("forget").addEventListener("click", reset);
  $("reset").addEventListener("click", reset);
  $("lock").addEventListener("click", () => location.reload()); // drops every secret in memory
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    addKey($("key-text").value);
  });
  if ("BarcodeDetector" in window) {
    $("key-scan").hidden = false;
    $("key-scan").addEventListener("click", () => $("key-image").click());
    $("key-image").addEventListener("change", onKeyImage);
  }
  for (const button of document.querySelectorAll("button[data-cmd]")) {
    button.addEventListener("click", () => {
      try {
        app.device.send({ CMD: button.dataset.cmd });
      } catch (e) {
        ui.alert(e.message, "request");
      }
    });
  }
  app.settings = loadSettings();
  ui.show(app.settings && loadVault() ? "unlock" : "setup");
  checkClock();
}

main();
