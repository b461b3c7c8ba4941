// Compile Ink source with inkjs's compiler and play given choice paths in the inkjs runtime.
// Usage: node ink_play.js REQUEST.json  where REQUEST is
//   {"source": "<.ink text>" | null, "compiled": "<.ink.json text>" | null, "paths": [[0, 1], ...], "flags": [...]}
// Prints JSON: {"errors": [...], "warnings": [...], "runs": {"source": [...], "compiled": [...]}} where each run is
//   {"lines": [...], "offered": [[...], ...], "flags": {name: value}, "globalTags": [...]}
"use strict";
const fs = require("fs");
const { Compiler, Story } = require("inkjs/full");

function play(story, path, flags) {
  const lines = [];
  const offered = [];
  for (const step of [...path, null]) {
    while (story.canContinue) {
      const line = story.Continue().trim();
      if (line) lines.push(line);
    }
    offered.push(story.currentChoices.map((c) => c.text));
    if (step !== null) story.ChooseChoiceIndex(step);
  }
  const values = {};
  for (const f of flags) values[f] = story.variablesState[f];
  return { lines, offered, flags: values, globalTags: story.globalTags || [] };
}

const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = { errors: [], warnings: [], runs: {} };
if (req.source !== null && req.source !== undefined) {
  const compiler = new Compiler(req.source);
  let compiled = null;
  try {
    compiled = compiler.Compile();
  } catch (e) {
    out.errors.push(String(e && e.message ? e.message : e));
  }
  out.errors.push(...compiler.errors);
  out.warnings.push(...compiler.warnings);
  if (compiled && out.errors.length === 0) {
    const json = compiled.ToJson();
    out.runs.source = req.paths.map((p) => play(new Story(json), p, req.flags));
  }
}
if (req.compiled !== null && req.compiled !== undefined) {
  out.runs.compiled = req.paths.map((p) => play(new Story(req.compiled), p, req.flags));
}
process.stdout.write(JSON.stringify(out));
