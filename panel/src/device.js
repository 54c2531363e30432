// SPDX-License-Identifier: MIT
// The device's one MQTT topic over WebSockets (MQTT.js): requests out, the device's output in.
// Device output is recognised by its marks (protocol.py): JSON with a "FROM" key, or a text line
// starting with Error:, Info: or Uptime=. Other messages on the topic are requests from other
// clients, and are ignored.
import mqtt from "mqtt";

const TEXT_PREFIXES = ["Error:", "Info:", "Uptime="];

// What a device message says, as protocol.py's read_output does (tests/panel keeps the two in
// step over one corpus): {kind, value, sender}, kind "state" or "notify" (value {pin: 0/1}),
// "status" or "ip" (text), "text" (an Error:/Info:/Uptime= line, sender null); null if the
// message is no device output or not well formed.
export function readOutput(text, prefix) {
  if (TEXT_PREFIXES.some((p) => text.startsWith(p))) return { kind: "text", value: text, sender: null };
  if (!text.includes('"FROM"')) return null;
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    return null;
  }
  if (!obj || typeof obj !== "object" || Array.isArray(obj) || typeof obj.FROM !== "string") return null;
  const { FROM: sender, ...rest } = obj;
  for (const [kind, key] of [["notify", "NOTIFY"], ["status", "STATUS"], ["ip", "IP"]]) {
    if (key in rest) {
      const v = rest[key];
      const value = kind === "notify" ? pinValues(v, prefix) : typeof v === "string" ? v : null;
      return value === null ? null : { kind, value, sender };
    }
  }
  const value = pinValues(rest, prefix);
  return value === null ? null : { kind: "state", value, sender };
}

function pinValues(obj, prefix) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return null;
  const out = {};
  for (const [key, v] of Object.entries(obj)) {
    const digits = key.slice(prefix.length);
    if (!key.startsWith(prefix) || !/^\d+$/.test(digits) || (v !== 0 && v !== 1)) return null;
    out[Number(digits)] = v;
  }
  return out;
}

export class Device extends EventTarget {
  constructor(layout) {
    super();
    this.layout = layout;
    this.client = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect(url, user, password) {
    this.close();
    const id = "tinyctrl-panel-" + Array.from(crypto.getRandomValues(new Uint8Array(4)),
      (b) => b.toString(16).padStart(2, "0")).join("");
    const client = mqtt.connect(url, {
      clientId: id,
      username: user || undefined,
      password: password || undefined,
      clean: true,
      protocolVersion: 4,
      connectTimeout: 8000,
      reconnectPeriod: 5000,
      // MQTT.js keeps its keepalive timer in a Web Worker (a blob: URL, allowed by the page's
      // CSP) so a phone's background throttling does not drop the connection.
    });
    this.client = client;
    this.emit("link", { state: "connecting", url });
    client.on("connect", () => {
      client.subscribe(this.layout.topic, { qos: 1 }, (err) => {
        if (err) return this.emit("link", { state: "error", reason: "subscribe failed: " + err.message });
        this.emit("link", { state: "connected", url });
        this.send({ CMD: "refresh" }); // every pin's state, and proof the device is online
      });
    });
    client.on("error", (err) => this.emit("link", { state: "error", reason: err.message, url }));
    client.on("offline", () => this.emit("link", { state: "unreachable", url }));
    client.on("message", (topic, payload) => this.receive(payload.toString()));
  }

  close() {
    if (this.client) this.client.end(true);
    this.client = null;
  }

  send(request) {
    if (!this.client || !this.client.connected) throw new Error("not connected to the broker");
    this.client.publish(this.layout.topic, JSON.stringify(request), { qos: 1, retain: false });
    this.emit("sent", request);
  }

  receive(text) {
    const out = readOutput(text, this.layout.prefix);
    if (!out) return; // not the device's: its output is always marked
    if (out.kind === "text") return this.emit("text", out.value);
    this.emit("online", out.kind === "status" ? out.value : "online");
    if (out.kind === "notify") return this.emit("notify", out.value);
    if (out.kind === "ip") return this.emit("text", "IP=" + out.value);
    if (out.kind === "state") this.emit("state", out.value);
  }
}
