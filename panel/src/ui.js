// SPDX-License-Identifier: MIT
// The page's DOM: screens, the pin list, badges, the alert line and the log. No logic here.
const $ = (id) => document.getElementById(id);
const LOG_LINES = 50;

export function show(screen) {
  for (const id of ["unlock", "setup", "panel"]) $(id).hidden = id !== screen;
}

export function badge(id, text, kind) {
  $(id).textContent = text;
  $(id).dataset.kind = kind;
}

// One alert at a time, the newest; `cause` lets a later event clear only its own alert.
export function alert(text, cause = "") {
  $("alert").textContent = text;
  $("alert").dataset.cause = cause;
  $("alert").hidden = false;
}

export function clearAlert(cause) {
  if (cause === undefined || $("alert").dataset.cause === cause) $("alert").hidden = true;
}

export function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

export function log(text, kind = "") {
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + "  " + text;
  li.dataset.kind = kind;
  const list = $("log");
  list.prepend(li);
  while (list.children.length > LOG_LINES) list.lastChild.remove();
}

function el(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// Outputs (relays, momentary relays) get a button; contacts only a state. `guard(pin)` says
// what a protected pin needs ("TOTP", "signed") or "".
export function renderPins(layout, guard, onPress) {
  const outputs = [
    ...layout.relay.map((p) => [p, "relay"]),
    ...Object.keys(layout.momentary).map((p) => [Number(p), "momentary"]),
  ].sort((a, b) => a[0] - b[0]);
  const rows = outputs.map(([pin, kind]) => {
    const button = el("button", { type: "button", className: "act", textContent: "…" });
    button.addEventListener("click", () => onPress(pin, kind));
    const tags = [kind === "momentary" ? "momentary " + layout.momentary[pin] + " s" : "relay"];
    if (guard(pin)) tags.push(guard(pin));
    const li = el("li", { className: "pin" },
      el("span", { className: "name", textContent: layout.prefix + pin }),
      el("span", { className: "tags", textContent: tags.join(" · ") }),
      el("span", { className: "state", textContent: "?" }), button);
    li.dataset.pin = pin;
    li.dataset.kind = kind;
    return li;
  });
  $("outputs").replaceChildren(...rows);
  $("contacts").replaceChildren(...layout.contact.map((pin) => {
    const li = el("li", { className: "pin" },
      el("span", { className: "name", textContent: layout.prefix + pin }),
      el("span", { className: "tags", textContent: layout.notify.includes(pin) ? "contact · notify" : "contact" }),
      el("span", { className: "state", textContent: "?" }));
    li.dataset.pin = pin;
    li.dataset.kind = "contact";
    return li;
  }));
  for (const pin of layout.contact) showPin(pin, undefined);
  for (const [pin] of outputs) showPin(pin, undefined);
}

export function showPin(pin, value) {
  for (const li of document.querySelectorAll('li.pin[data-pin="' + pin + '"]')) {
    const known = value === 0 || value === 1;
    li.dataset.state = known ? String(value) : "";
    const contact = li.dataset.kind === "contact";
    li.querySelector(".state").textContent = !known ? "?" : contact ? (value ? "closed" : "open") : value ? "on" : "off";
    const button = li.querySelector("button.act");
    if (button) {
      button.textContent = li.dataset.kind === "momentary" ? "Trigger" : value ? "Turn off" : "Turn on";
    }
  }
}

export function flash(pin) {
  for (const li of document.querySelectorAll('li.pin[data-pin="' + pin + '"]')) {
    li.classList.remove("changed");
    void li.offsetWidth; // restart the animation
    li.classList.add("changed");
  }
}

// The key form's pin choice and the list of which pins have a key (never the key itself).
export function renderKeys(layout, secrets) {
  const options = layout.totpPins.map((p) => el("option", { value: p, textContent: layout.prefix + p }));
  $("key-pin").replaceChildren(...options);
  $("key-form").hidden = !options.length;
  const items = [
    ...layout.totpPins.map((p) => [p, "TOTP", !!secrets.totp[p]]),
    ...layout.signPins.map((p) => [p, "signed", !!secrets.sign[p]]),
  ].sort((a, b) => a[0] - b[0]);
  $("key-list").replaceChildren(...items.map(([p, kind, has]) =>
    el("li", { textContent: layout.prefix + p + " (" + kind + "): " + (has ? "key stored" : "no key") })));
}
