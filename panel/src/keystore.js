// SPDX-License-Identifier: MIT
// What the page keeps in the browser's localStorage. The layout (topic, pins) and the broker
// address are not secret and stay readable; the broker password and the TOTP/sign keys are
// sealed with the user's passphrase: PBKDF2-HMAC-SHA256 (600 000 iterations, OWASP 2023)
// derives an AES-256-GCM key, so a copied storage dump is useless without the passphrase.
const SETTINGS = "tinyctrl.panel.settings";
const VAULT = "tinyctrl.panel.vault";
const ITERATIONS = 600000;

export class WrongPassphrase extends Error {}

const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function deriveKey(passphrase, salt, iterations) {
  const base = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

export async function seal(passphrase, secrets) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await deriveKey(passphrase, salt, ITERATIONS);
  const data = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv }, key, new TextEncoder().encode(JSON.stringify(secrets)));
  return { kdf: "PBKDF2-SHA256", iterations: ITERATIONS, salt: b64(salt), iv: b64(iv), data: b64(data) };
}

export async function unseal(passphrase, sealed) {
  const key = await deriveKey(passphrase, unb64(sealed.salt), sealed.iterations);
  let plain;
  try {
    plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(sealed.iv) }, key, unb64(sealed.data));
  } catch {
    throw new WrongPassphrase("wrong passphrase");  // GCM's tag check fails for any other key
  }
  return JSON.parse(new TextDecoder().decode(plain));
}

function read(name) {
  try {
    return JSON.parse(localStorage.getItem(name));
  } catch {
    return null;
  }
}

export const loadSettings = () => read(SETTINGS);
export const loadVault = () => read(VAULT);

export async function save(settings, secrets, passphrase) {
  localStorage.setItem(VAULT, JSON.stringify(await seal(passphrase, secrets)));
  localStorage.setItem(SETTINGS, JSON.stringify(settings));
}

export function forget() {
  localStorage.removeItem(SETTINGS);
  localStorage.removeItem(VAULT);
}
