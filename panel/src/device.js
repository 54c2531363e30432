// SPDX-License-Identifier: MIT
// The device's one MQTT topic over WebSockets (MQTT.js): requests out, the device's output in.
// Device output is recognised by its marks (protocol.py): JSON with a "FROM" key, whatever its
// value, or a text line starting with Error:, Info: or Uptime=. Other messages on the topic are
// requests from other clients, and are ignored.
import mqtt from "mqtt";

const TEXT_PREFIXES = ["Error:", "Info:", "Uptime="];

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
    if (TEXT_PREFIXES.some((p) => text.startsWith(p))) return this.emit("text", text);
    let obj;
    try {
      obj = JSON.parse(text);
    } catch {
      return; // not the device's: its output is always marked
    }
    if (!obj || typeof obj !== "object" || !("FROM" in obj)) return;
    const { prefix } = this.layout;
    const pins = (o) => {
      const out = {};
      for (const [k, v] of Object.entries(o || {})) {
        if (k.startsWith(prefix) && /^\d+$/.test(k.slice(prefix.length))) out[Number(k.slice(prefix.length))] = v;
      }
      return out;
    };
    this.emit("online", obj.STATUS || "online");
    if ("NOTIFY" in obj) return this.emit("notify", pins(obj.NOTIFY));
    if ("IP" in obj) return this.emit("text", "IP=" + obj.IP);
    if ("STATUS" in obj) return;
    this.emit("state", pins(obj));
  }
}
