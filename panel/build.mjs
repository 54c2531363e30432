// SPDX-License-Identifier: MIT
// Bundles the panel into one JavaScript file next to its page (./build.sh panel).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = process.argv[2];
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "iife",
  target: "es2020",
  platform: "browser",
  minify: true,
  legalComments: "linked", // MQTT.js's licence notices go with the bundle
  outfile: out + "/panel.js",
});
for (const file of ["index.html", "style.css"]) copyFileSync(file, out + "/" + file);
