// The Conjure playground: forms from each generator's param schema, live previews, share links, downloads.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere: everything comes from this
// server's /api. All URLs are relative, so the page works behind a reverse proxy under a path prefix.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KIND_ORDER = ["level", "character", "story"];
const ENTITY_COLORS = {spawn: "#3ddc84", exit: "#ffd23f", goal: "#ffd23f", enemy: "#ff4d4d", treasure: "#ffb000",
  coin: "#ffe066", key: "#80e0ff", npc: "#5ab0ff", town: "#ffffff"};
const CONTEXT_SLOTS = {level: [], character: ["level"], story: ["level", "cast"]};

const state = {
  generators: [], byId: {}, gen: null, history: [], timers: [], abort: null, debounce: null,
  wantVersion: null, lastHash: "", doc: null, seq: 0, themes: [], look: "",
};

// ------------------------------------------------------------------------------------------ start-up
async function start() {
  try {
    const [gens, version, themes] = await Promise.all([getJSON("api/generators"), getJSON("api/version"),
      getJSON("api/themes")]);
    state.generators = gens;
    state.themes = themes;
    for (const g of gens) state.byId[g.id] = g;
    $("#version").textContent = `conjure ${version.conjure}`;
  } catch (e) {
    showError(`cannot reach the server: ${e.message}`);
    return;
  }
  fillGeneratorSelect();
  const q = new URLSearchParams(location.search);
  let params = null;
  let genId = q.get("generator");
  if (genId && !state.byId[genId]) {
    showError(`this link asks for generator '${genId}', which this server does not have`);
    genId = null;
  }
  if (!genId) genId = (state.generators.find((g) => g.kind === "level" && g.default) || state.generators[0]).id;
  if (q.has("seed")) $("#seed").value = q.get("seed");
  if (q.has("params")) {
    try { params = JSON.parse(q.get("params")); } catch (e) { showError("the link's params are not valid JSON"); }
  }
  state.wantVersion = q.get("version");
  if (q.has("context")) {  // earlier results by content hash: the server must still hold them
    try {
      for (const [slot, hash] of Object.entries(JSON.parse(q.get("context")))) {
        if (typeof hash === "string") state.history.push({slot, hash, label: "from the link", checked: true});
      }
    } catch (e) { showError("the link's context is not valid JSON"); }
  }
  selectGenerator(genId, params);
  $("#generator").addEventListener("change", () => { state.wantVersion = null; selectGenerator($("#generator").value, null); });
  $("#seed").addEventListener("input", () => schedule());
  $("#reroll").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * 2 ** 31));
    schedule(0);
  });
  $("#reset").addEventListener("click", () => selectGenerator(state.gen.id, null));
  $("#copy").addEventListener("click", async () => {
    const el = $("#share");
    el.select();
    try { await navigator.clipboard.writeText(el.value); $("#copy").textContent = "Copied"; }
    catch (e) { document.execCommand("copy"); }
    setTimeout(() => { $("#copy").textContent = "Copy"; }, 1200);
  });
  $("#blend-slider").addEventListener("input", () => {
    if (!$("#blend-seed").value) $("#blend-seed").value = String(seedPlusOne($("#seed").value));
    $("#blend-value").textContent = $("#blend-slider").value;
    schedule();
  });
  $("#blend-seed").addEventListener("input", () => schedule());
}

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function fillGeneratorSelect() {
  const sel = $("#generator");
  sel.textContent = "";
  for (const kind of KIND_ORDER.concat([...new Set(state.generators.map((g) => g.kind))].filter((k) => !KIND_ORDER.includes(k)))) {
    const gens = state.generators.filter((g) => g.kind === kind);
    if (!gens.length) continue;
    const group = document.createElement("optgroup");
    group.label = kind;
    for (const g of gens) {
      const o = document.createElement("option");
      o.value = g.id;
      o.textContent = `${g.id} (v${g.version})${g.default ? " · default" : ""}`;
      group.appendChild(o);
    }
    sel.appendChild(group);
  }
}

function seedPlusOne(seed) {
  return /^[+-]?\d+$/.test(seed.trim()) ? String(BigInt(seed.trim()) + 1n) : seed + "-b";
}

// ------------------------------------------------------------------------------------------ the form
function hasBlend(g) {
  const names = g.params.map((p) => p.name);
  return names.includes("blend_seed") && names.includes("blend");
}

function hiddenParams(g) {
  const out = new Set(g.local_only || []);
  if (hasBlend(g)) { out.add("blend_seed"); out.add("blend"); }
  return out;
}

function selectGenerator(id, values) {
  const g = state.byId[id];
  state.gen = g;
  $("#generator").value = id;
  $("#description").textContent = g.description || "";
  const form = $("#params");
  form.textContent = "";
  const hidden = hiddenParams(g);
  for (const p of g.params) {
    if (hidden.has(p.name)) continue;
    form.appendChild(paramField(p, values && p.name in values ? values[p.name] : p.default));
  }
  const blend = $("#blend");
  blend.hidden = !hasBlend(g);
  if (hasBlend(g)) {
    $("#blend-seed").value = values && values.blend_seed != null ? String(values.blend_seed) : "";
    const b = values && values.blend != null ? values.blend : 0;
    $("#blend-slider").value = String(b);
    $("#blend-value").textContent = String(b);
  }
  renderContextChoices();
  schedule(0);
}

function paramField(p, value) {
  const wrap = document.createElement("div");
  wrap.className = "param row";
  wrap.dataset.param = p.name;
  const label = document.createElement("label");
  label.textContent = p.name;
  label.htmlFor = `param-${p.name}`;
  wrap.appendChild(label);
  let input;
  if (p.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = value === true || value === "true";
    wrap.appendChild(input);
  } else if (p.type === "choice") {
    input = document.createElement("select");
    for (const c of p.choices) {
      const o = document.createElement("option");
      o.value = String(c); o.textContent = String(c);
      input.appendChild(o);
    }
    input.value = String(value);
    wrap.appendChild(input);
  } else if (p.type === "int" || p.type === "float") {
    input = document.createElement("input");
    input.type = "number";
    const step = p.type === "int" ? 1 : niceStep(p);
    input.step = String(step);
    if (p.min != null) input.min = String(p.min);
    if (p.max != null) input.max = String(p.max);
    // a param that also takes "auto" (the generator picks): a checkbox beside the number
    const isAuto = p.auto && value === "auto";
    const shown = isAuto ? (p.min != null ? p.min : 0) : value;
    input.value = String(shown);
    let auto = null;
    if (p.auto) {
      auto = document.createElement("input");
      auto.type = "checkbox";
      auto.checked = isAuto;
      auto.id = `param-${p.name}-auto`;
      auto.dataset.testid = `param-${p.name}-auto`;
      auto.addEventListener("change", () => schedule());
      input.dataset.auto = auto.id;
      input.addEventListener("input", () => { auto.checked = false; });
    }
    if (p.min != null && p.max != null) {
      const range = document.createElement("input");
      range.type = "range";
      range.min = String(p.min); range.max = String(p.max); range.step = String(step);
      range.value = String(shown);
      range.setAttribute("aria-label", p.name);
      range.addEventListener("input", () => { input.value = range.value; if (auto) auto.checked = false; schedule(); });
      input.addEventListener("input", () => { range.value = input.value; });
      wrap.appendChild(range);
    }
    wrap.appendChild(input);
    if (auto) {
      const l = document.createElement("label");
      l.appendChild(auto);
      l.appendChild(document.createTextNode(" auto"));
      wrap.appendChild(l);
    }
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.value = value == null ? "" : String(value);
    input.spellcheck = false;
    wrap.appendChild(input);
  }
  input.id = `param-${p.name}`;
  input.dataset.testid = `param-${p.name}`;
  input.dataset.type = p.type;
  input.name = p.name;
  input.addEventListener(p.type === "bool" || p.type === "choice" ? "change" : "input", () => schedule());
  if (p.help) {
    const help = document.createElement("div");
    help.className = "help";
    help.textContent = p.help + rangeText(p);
    const outer = document.createElement("div");
    outer.appendChild(wrap);
    outer.appendChild(help);
    return outer;
  }
  return wrap;
}

function niceStep(p) {
  if (p.min == null || p.max == null) return "any";
  const span = p.max - p.min;
  return span <= 1 ? 0.01 : span <= 10 ? 0.05 : span <= 100 ? 0.5 : 1;
}

function rangeText(p) {
  return p.min != null && p.max != null ? ` (${p.min}..${p.max})` : "";
}

function currentParams() {
  const g = state.gen;
  const out = {};
  for (const el of $("#params").querySelectorAll("input[name], select[name]")) {
    const t = el.dataset.type;
    if (el.dataset.auto && document.getElementById(el.dataset.auto).checked) out[el.name] = "auto";
    else if (t === "bool") out[el.name] = el.checked;
    else if (t === "int") out[el.name] = el.value.trim() === "" ? el.value : Number(el.value);
    else if (t === "float") out[el.name] = el.value.trim() === "" ? el.value : Number(el.value);
    else out[el.name] = el.value;
  }
  if (hasBlend(g)) {
    out.blend_seed = $("#blend-seed").value;
    out.blend = Number($("#blend-slider").value);
  }
  // numbers the server would refuse (empty, NaN) go as they are typed so its one-line error names them
  for (const [k, v] of Object.entries(out)) if (typeof v === "number" && !Number.isFinite(v)) out[k] = String(v);
  return out;
}

// ------------------------------------------------------------------------------------------ context
function renderContextChoices() {
  const box = $("#context-items");
  const slots = CONTEXT_SLOTS[state.gen.kind] || [];
  const keep = {};
  for (const el of box.querySelectorAll("input[type=checkbox]")) keep[el.value] = el.checked;
  box.textContent = "";
  let any = false;
  for (const slot of slots) {
    const items = state.history.filter((h) => h.slot === slot).slice(-4).reverse();
    for (const h of items) {
      any = true;
      const row = document.createElement("label");
      row.className = "row";
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.value = h.hash;
      cb.dataset.slot = slot;
      cb.checked = !!keep[h.hash] || !!h.checked;
      delete h.checked;
      cb.addEventListener("change", () => {
        if (cb.checked) for (const o of box.querySelectorAll(`input[data-slot=${slot}]`)) if (o !== cb) o.checked = false;
        schedule(0);
      });
      row.appendChild(cb);
      row.appendChild(document.createTextNode(` ${slot}: ${h.label} (${h.hash.slice(0, 8)}…)`));
      box.appendChild(row);
    }
  }
  $("#context").hidden = !any;
}

function currentContext() {
  const ctx = {};
  for (const el of $("#context-items").querySelectorAll("input[type=checkbox]")) if (el.checked) ctx[el.dataset.slot] = el.value;
  return Object.keys(ctx).length ? ctx : null;
}

// ------------------------------------------------------------------------------------------ requests
function query(format, options) {
  const g = state.gen;
  const q = new URLSearchParams();
  q.set("kind", g.kind);
  q.set("generator", g.id);
  q.set("seed", $("#seed").value);
  q.set("params", JSON.stringify(currentParams()));
  q.set("version", state.wantVersion || String(g.version));
  const ctx = currentContext();
  if (ctx) q.set("context", JSON.stringify(ctx));
  if (format) q.set("format", format);
  if (options) q.set("options", JSON.stringify(options));
  return q;
}

function schedule(delay = 200) {
  clearTimeout(state.debounce);
  state.debounce = setTimeout(generate, delay);
}

async function generate() {
  if (state.abort) state.abort.abort();
  const abort = state.abort = new AbortController();
  const seq = ++state.seq;
  const g = state.gen;
  const url = "api/generate?" + query("json").toString();
  setStatus(`generating ${g.kind} with ${g.id}…`);
  document.body.dataset.busy = "1";
  const t0 = performance.now();
  let r, body;
  try {
    r = await fetch(url, {signal: abort.signal});
    body = await r.text();
  } catch (e) {
    if (e.name !== "AbortError") { showError(`request failed: ${e.message}`); delete document.body.dataset.busy; }
    return;
  }
  if (seq !== state.seq) return;  // a newer request is on its way
  delete document.body.dataset.busy;
  if (!r.ok) {
    let msg = body;
    try { msg = JSON.parse(body).error; } catch (e) { /* not JSON */ }
    showError(msg, r.status === 400 && /asks for version/.test(msg || ""));
    setStatus(`HTTP ${r.status}`);
    return;
  }
  hideError();
  const doc = JSON.parse(body);
  const hash = r.headers.get("X-Content-Hash") || "";
  const ms = Math.round(performance.now() - t0);
  setStatus(`${doc.schema} · ${ms} ms · ${r.headers.get("X-Cache") || "cached by the browser"}`);
  state.doc = doc;
  state.lastHash = hash;
  $("#hash").textContent = hash;
  document.body.dataset.hash = hash;
  remember(doc, hash);
  renderPreview(doc);
  renderShare();
  renderDownloads();
}

function remember(doc, hash) {
  const slot = doc.schema.startsWith("conjure.level") ? "level"
    : doc.schema.startsWith("conjure.cast") || doc.schema.startsWith("conjure.character") ? "cast" : "story";
  if (state.history.some((h) => h.hash === hash)) return;
  const m = doc.metadata || {};
  state.history.push({slot, hash, label: `${m.generator || "?"} seed ${m.seed}`});
  if (state.history.length > 40) state.history.shift();
  renderContextChoices();
}

function renderShare() {
  const q = new URLSearchParams();
  q.set("generator", state.gen.id);
  q.set("version", state.wantVersion || String(state.gen.version));
  q.set("seed", $("#seed").value);
  q.set("params", JSON.stringify(currentParams()));
  const ctx = currentContext();
  if (ctx) q.set("context", JSON.stringify(ctx));
  const url = new URL(location.pathname + "?" + q.toString(), location.href);
  $("#share").value = url.toString();
}

function renderDownloads() {
  const box = $("#downloads");
  box.textContent = "";
  for (const fmt of state.gen.formats) {
    const a = document.createElement("a");
    a.href = "api/generate?" + query(fmt).toString();
    a.textContent = fmt;
    a.setAttribute("download", "");
    a.dataset.format = fmt;
    a.dataset.testid = `download-${fmt}`;
    box.appendChild(a);
  }
}

function setStatus(text) { $("#status").textContent = text; }

function showError(msg, versionMismatch = false) {
  const el = $("#error");
  el.hidden = false;
  el.textContent = msg;
  if (versionMismatch) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `use this server's version ${state.gen.version}`;
    b.style.marginLeft = "1em";
    b.addEventListener("click", () => { state.wantVersion = null; schedule(0); });
    el.appendChild(b);
  }
}

function hideError() { $("#error").hidden = true; $("#error").textContent = ""; }

// ------------------------------------------------------------------------------------------ previews
function renderPreview(doc) {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  const box = $("#preview");
  box.textContent = "";
  box.dataset.schema = doc.schema;
  const kind = doc.schema.split("/")[0];
  if (kind === "conjure.level") box.appendChild(levelView(doc));
  else if (kind === "conjure.character") box.appendChild(cards([doc]));
  else if (kind === "conjure.cast") box.appendChild(cards(doc.characters || []));
  else if (kind === "conjure.story") box.appendChild(storyView(doc));
  else box.appendChild(pre(JSON.stringify(doc, null, 1).slice(0, 4000)));
}

function pre(text) { const p = document.createElement("pre"); p.textContent = text; return p; }

function rgb(c) {
  if (!c) return "#888";
  return c.length >= 4 ? `rgba(${c[0]},${c[1]},${c[2]},${c[3] / 255})` : `rgb(${c[0]},${c[1]},${c[2]})`;
}

function grid(pixels, w, h) {
  // JSON grids are rows of ints; accept a flat list too
  if (Array.isArray(pixels) && Array.isArray(pixels[0])) return pixels;
  const rows = [];
  for (let y = 0; y < h; y++) rows.push(pixels.slice(y * w, (y + 1) * w));
  return rows;
}

function levelView(doc) {
  const wrap = document.createElement("div");
  const layer = (doc.layers || []).find((l) => l.name === "tiles") || (doc.layers || [])[0];
  const w = doc.width, h = doc.height;
  const scale = Math.max(2, Math.min(16, Math.floor(Math.min(760 / w, 520 / h))));
  const canvas = document.createElement("canvas");
  canvas.width = w * scale; canvas.height = h * scale;
  canvas.dataset.testid = "level-canvas";
  canvas.setAttribute("aria-label", `level ${w}x${h}`);
  const ctx = canvas.getContext("2d");
  const colors = {};
  const names = {};
  for (const t of (doc.tileset && doc.tileset.tiles) || []) { colors[t.id] = rgb(t.color); names[t.id] = t.name; }
  const used = new Set();
  const rows = layer ? grid(layer.tiles, w, h) : [];
  for (let y = 0; y < rows.length; y++) {
    for (let x = 0; x < rows[y].length; x++) {
      const id = rows[y][x];
      used.add(id);
      ctx.fillStyle = colors[id] || "#f0f";
      ctx.fillRect(x * scale, y * scale, scale, scale);
    }
  }
  const kinds = {};
  for (const e of doc.entities || []) {
    kinds[e.kind] = (kinds[e.kind] || 0) + 1;
    const cx = (e.x + 0.5) * scale, cy = (e.y + 0.5) * scale;
    ctx.beginPath();
    ctx.arc(cx, cy, Math.max(2, scale * 0.38), 0, 2 * Math.PI);
    ctx.fillStyle = ENTITY_COLORS[e.kind] || "#ff80ff";
    ctx.fill();
    ctx.lineWidth = Math.max(1, scale / 8);
    ctx.strokeStyle = "#000";
    ctx.stroke();
  }
  wrap.appendChild(canvas);
  if (state.themes.length) {  // tile art: the server's themed PNG of the same request
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("label");
    label.textContent = "Look";
    const sel = document.createElement("select");
    sel.dataset.testid = "look";
    label.appendChild(sel);
    for (const [value, text] of [["", "flat colours"], ...state.themes.map((t) => [t.name, `${t.name} tiles (${t.license})`])]) {
      const o = document.createElement("option");
      o.value = value; o.textContent = text;
      sel.appendChild(o);
    }
    sel.value = state.look;
    const img = document.createElement("img");
    img.dataset.testid = "themed";
    img.alt = "themed preview";
    img.style.maxWidth = "100%";
    const show = () => {
      state.look = sel.value;
      canvas.hidden = !!state.look;
      img.hidden = !state.look;
      if (state.look) img.src = "api/generate?" + query("png", {theme: state.look, tile_size: 16}).toString();
    };
    sel.addEventListener("change", show);
    wrap.insertBefore(row, canvas);
    row.appendChild(label);
    wrap.insertBefore(img, canvas.nextSibling);
    show();
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const id of [...used].sort((a, b) => a - b)) legend.appendChild(swatch(colors[id], names[id] || `tile ${id}`));
  for (const [k, n] of Object.entries(kinds)) legend.appendChild(swatch(ENTITY_COLORS[k] || "#ff80ff", `${k} ×${n}`, true));
  wrap.appendChild(legend);
  const info = document.createElement("p");
  info.className = "muted";
  const regions = (doc.regions || []).slice(0, 6).map((r) => r.name).join(", ");
  info.textContent = `${w}×${h} · ${(doc.entities || []).length} entities` + (regions ? ` · regions: ${regions}${doc.regions.length > 6 ? "…" : ""}` : "");
  wrap.appendChild(info);
  return wrap;
}

function swatch(color, label, round = false) {
  const s = document.createElement("span");
  const i = document.createElement("i");
  i.style.background = color;
  if (round) i.style.borderRadius = "50%";
  s.appendChild(i);
  s.appendChild(document.createTextNode(label));
  return s;
}

function cards(chars) {
  const box = document.createElement("div");
  box.className = "cards";
  for (const c of chars.slice(0, 32)) box.appendChild(characterCard(c));
  if (chars.length > 32) box.appendChild(pre(`… and ${chars.length - 32} more`));
  return box;
}

function spriteFrames(sprite) {
  const frames = {};
  for (const f of sprite.frames || []) {
    const img = new ImageData(sprite.width, sprite.height);
    const rows = grid(f.pixels, sprite.width, sprite.height);
    for (let y = 0; y < sprite.height; y++) {
      for (let x = 0; x < sprite.width; x++) {
        const c = sprite.palette[rows[y][x]] || [0, 0, 0, 0];
        const o = (y * sprite.width + x) * 4;
        img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = c[3];
      }
    }
    frames[f.name] = img;
  }
  return frames;
}

function characterCard(c) {
  const card = document.createElement("div");
  card.className = "card";
  card.dataset.id = c.id;
  if (c.sprite && c.sprite.frames && c.sprite.frames.length) {
    const s = c.sprite;
    const frames = spriteFrames(s);
    const anims = s.animations || {};
    const names = Object.keys(anims);
    let anim = names.includes("walk") ? "walk" : names[0];
    const scale = Math.max(2, Math.floor(96 / Math.max(s.width, s.height)));
    const canvas = document.createElement("canvas");
    canvas.width = s.width * scale; canvas.height = s.height * scale;
    canvas.dataset.testid = "sprite";
    canvas.style.background = "#3a3546";
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    const small = document.createElement("canvas");
    small.width = s.width; small.height = s.height;
    let tick = 0;
    const draw = () => {
      const seq = (anim && anims[anim]) || Object.keys(frames);
      const name = seq[tick % seq.length];
      small.getContext("2d").putImageData(frames[name] || Object.values(frames)[0], 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
      canvas.dataset.frame = String(tick);
      canvas.dataset.frameName = name;
      tick++;
    };
    draw();
    state.timers.push(setInterval(draw, 220));
    card.appendChild(canvas);
    if (names.length > 1) {
      const sel = document.createElement("select");
      sel.setAttribute("aria-label", "animation");
      for (const n of names) { const o = document.createElement("option"); o.value = n; o.textContent = n; sel.appendChild(o); }
      sel.value = anim;
      sel.addEventListener("change", () => { anim = sel.value; tick = 0; });
      card.appendChild(sel);
    }
  }
  const h = document.createElement("h3");
  h.textContent = `${c.name}, ${c.role}`;
  card.appendChild(h);
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = [c.style, (c.traits || []).join(", ")].filter(Boolean).join(" · ");
  card.appendChild(p);
  const t = document.createElement("table");
  for (const [k, v] of Object.entries(c.attributes || {})) {
    const tr = t.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = String(v);
  }
  card.appendChild(t);
  if (c.backstory) { const b = document.createElement("p"); b.textContent = c.backstory; card.appendChild(b); }
  return card;
}

function storyView(doc) {
  const box = document.createElement("div");
  box.className = "story";
  const h = document.createElement("h2");
  h.textContent = doc.title;
  box.appendChild(h);
  const q = doc.quest || {};
  const sum = document.createElement("p");
  sum.textContent = `${q.kind || ""} quest: ${q.summary || ""}` + (q.reward ? ` Reward: ${q.reward}.` : "");
  box.appendChild(sum);
  const ol = document.createElement("ol");
  for (const b of q.beats || []) { const li = document.createElement("li"); li.textContent = b.text; ol.appendChild(li); }
  box.appendChild(ol);
  const names = {};
  for (const c of doc.characters || []) names[c.id] = c.name;
  const nodes = {};
  for (const n of doc.nodes || []) nodes[n.id] = n;
  const dlg = document.createElement("div");
  dlg.className = "dialogue";
  dlg.dataset.testid = "dialogue";
  box.appendChild(dlg);
  const flags = new Set();
  const show = (id) => {
    const n = nodes[id];
    dlg.textContent = "";
    dlg.dataset.node = id;
    if (!n) { dlg.appendChild(pre(`(no node ${id})`)); return; }
    const sp = document.createElement("div");
    sp.className = "speaker";
    sp.textContent = names[n.speaker] || n.speaker || "";
    dlg.appendChild(sp);
    for (const line of n.lines || []) { const p = document.createElement("p"); p.textContent = line; dlg.appendChild(p); }
    const choices = document.createElement("div");
    choices.className = "choices";
    for (const c of n.choices || []) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = c.text;
      b.dataset.target = c.target;
      b.addEventListener("click", () => { for (const f of c.set_flags || []) flags.add(f); show(c.target); });
      choices.appendChild(b);
    }
    if (!(n.choices || []).length) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "(the end: start again)";
      b.addEventListener("click", () => { flags.clear(); show(doc.start); });
      choices.appendChild(b);
    }
    dlg.appendChild(choices);
    const f = document.createElement("div");
    f.className = "flags muted";
    f.textContent = flags.size ? `flags: ${[...flags].join(", ")}` : "";
    dlg.appendChild(f);
  };
  show(doc.start);
  return box;
}

start();
