// nnspec playground: the page. Plain JavaScript, no library: the editor is a textarea with a
// line-number gutter and marks; the pictures are canvases painted from the server's frames.
"use strict";

const $ = (id) => document.getElementById(id);
const LINE = 18; // px, the editor's line height (style.css)
const NAMES = {
  circle: "circle", xor: "XOR", gauss: "two Gaussians", spiral: "spiral",
  iris: "iris (2 features)", mcycle: "mcycle",
};
const CLASS_RGB = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const NEG = [245, 147, 34], POS = [8, 119, 189]; // the Playground's orange and blue

const ui = {
  session: null, config: null, valid: false, state: "idle", run: -1, start: null,
  frame: null, points: [], frames: 0, checkTimer: null, checkSeq: 0, issues: [],
  charW: 7.8, source: null,
};
// For tests and the curious: the page's state, read-only by convention.
window.nnspecPlayground = ui;

function b64bytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

async function post(path, body, raw = false) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ session: ui.session, ...body }),
  });
  if (raw) return response;
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function status(text) { $("status").textContent = text; }

// -- data panel ---------------------------------------------------------------------------
function dataChoice() {
  return {
    name: ui.dataset,
    noise: Number($("noise").value) / 100,
    seed: Number($("seed").value) || 0,
    test_fraction: Number($("test").value) / 100,
    features: [$("feature-x").value, $("feature-y").value],
  };
}

function setupData() {
  const box = $("datasets");
  for (const name of ui.config.choices) {
    const b = document.createElement("button");
    b.textContent = NAMES[name] || name;
    b.dataset.name = name;
    b.id = `data-${name}`;
    b.onclick = () => chooseData(name);
    box.appendChild(b);
  }
  for (const id of ["feature-x", "feature-y"]) {
    for (const f of ui.config.iris_features) {
      const o = document.createElement("option");
      o.value = o.textContent = f;
      $(id).appendChild(o);
    }
  }
  $("feature-x").value = "petal_length";
  $("feature-y").value = "petal_width";
  for (const id of ["noise", "test", "seed", "feature-x", "feature-y"]) {
    $(id).addEventListener("input", () => {
      $("noise-out").textContent = $("noise").value;
      $("test-out").textContent = $("test").value;
      scheduleCheck("data");
    });
  }
}

function chooseData(name) {
  const before = ui.dataset;
  ui.dataset = name;
  for (const b of $("datasets").children) b.classList.toggle("chosen", b.dataset.name === name);
  const builtin = name === "iris" || name === "mcycle";
  $("synthetic-options").hidden = builtin;
  $("iris-options").hidden = name !== "iris";
  $("dl-data").disabled = builtin;
  $("data-hint").textContent = builtin
    ? `built-in ${name} data; the spec names it as data: {builtin: ${name}}`
    : "500 points, as TensorFlow Playground draws them; the same seed gives the same points";
  // The editor follows the data while it holds an unedited starting spec.
  const text = $("spec").value;
  const untouched = Object.values(ui.config.templates).includes(text);
  if (before !== undefined && untouched && ui.config.templates[name] !== text) {
    setText(ui.config.templates[name]);
  }
  scheduleCheck("data");
}

// -- the editor ---------------------------------------------------------------------------
function setText(text) {
  $("spec").value = text;
  drawGutter();
}

function drawGutter() {
  const lines = $("spec").value.split("\n").length;
  const bad = new Map();
  for (const i of ui.issues) if (i.line) bad.set(i.line, (bad.get(i.line) || []).concat(i.text));
  const g = $("gutter");
  g.innerHTML = "";
  for (let n = 1; n <= lines; n++) {
    const d = document.createElement("div");
    d.textContent = n;
    d.dataset.line = n;
    if (bad.has(n)) {
      d.className = "err";
      d.title = bad.get(n).join("\n");
    }
    g.appendChild(d);
  }
  drawMarks();
}

function drawMarks() {
  const ta = $("spec"), marks = $("marks");
  marks.innerHTML = "";
  const top = 4 - ta.scrollTop, left = 6 - ta.scrollLeft;
  for (const i of ui.issues) {
    if (!i.line) continue;
    const y = top + (i.line - 1) * LINE;
    const line = document.createElement("div");
    line.className = "line";
    line.style.top = `${y}px`;
    line.dataset.line = i.line;
    line.title = i.text;
    marks.appendChild(line);
    const col = document.createElement("div");
    col.className = "col";
    const text = ta.value.split("\n")[i.line - 1] || "";
    const rest = text.slice((i.col || 1) - 1).match(/^[^\s:,}\]]*/)[0];
    col.style.top = `${y}px`;
    col.style.left = `${left + ((i.col || 1) - 1) * ui.charW}px`;
    col.style.width = `${Math.max(1, rest.length) * ui.charW}px`;
    marks.appendChild(col);
  }
  $("gutter").scrollTop = ta.scrollTop;
}

function measureChar() {
  const c = document.createElement("canvas").getContext("2d");
  c.font = getComputedStyle($("spec")).font;
  ui.charW = c.measureText("0123456789").width / 10 || 7.8;
}

function scheduleCheck(reset = false) {
  clearTimeout(ui.checkTimer);
  ui.checkTimer = setTimeout(() => check(reset), 200);
}

async function check(reset) {
  const seq = ++ui.checkSeq;
  let result;
  try {
    result = await post("/api/validate", { spec: $("spec").value, data: dataChoice() });
  } catch (e) {
    status(`validation failed: ${e.message}`);
    return;
  }
  if (seq !== ui.checkSeq) return; // a newer keystroke's answer is on its way
  showCheck(result);
  // New data shows at once, on a fresh network (as the Playground does), even mid-run; a
  // new spec waits for Train or Reset, so that editing a comment loses no run.
  if (reset && result.ok && (reset === "data" || ui.state !== "running")) await resetNetwork();
}

function showCheck(result) {
  ui.valid = result.ok;
  ui.issues = result.issues || [];
  const list = $("issues");
  list.innerHTML = "";
  for (const i of ui.issues) {
    const li = document.createElement("li");
    li.textContent = i.text;
    li.dataset.line = i.line || "";
    li.onclick = () => gotoLine(i.line, i.col);
    list.appendChild(li);
  }
  if (result.ok) {
    const li = document.createElement("li");
    li.className = "ok";
    li.textContent = `${$("file").textContent}: valid`;
    list.appendChild(li);
  }
  $("notes").innerHTML = "";
  for (const n of result.notes || []) {
    const li = document.createElement("li");
    li.textContent = n;
    $("notes").appendChild(li);
  }
  drawGutter();
  if (result.table) drawTable(result.table);
  updateButtons();
}

function gotoLine(line, col) {
  if (!line) return;
  const ta = $("spec");
  const lines = ta.value.split("\n");
  let pos = 0;
  for (let k = 0; k < line - 1; k++) pos += lines[k].length + 1;
  pos += (col || 1) - 1;
  ta.focus();
  ta.setSelectionRange(pos, pos);
  ta.scrollTop = Math.max(0, (line - 5) * LINE);
  drawMarks();
}

function shape(s) { return "(" + s.map((d) => (d === null ? "batch" : d)).join(", ") + ")"; }

function drawTable(t) {
  const body = $("table").querySelector("tbody");
  body.innerHTML = "";
  const row = (cells) => {
    const tr = document.createElement("tr");
    cells.forEach((c, k) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (k === 3) td.className = "num";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  };
  row(["input", "", shape(t.input), "0"]);
  for (const l of t.layers) row([l.name, l.kind, shape(l.output_shape), l.params.toLocaleString()]);
  $("totals").textContent = `${t.total_params.toLocaleString()} parameters` +
    (t.frozen_params ? `, ${t.frozen_params.toLocaleString()} frozen` : "");
}

// -- training controls --------------------------------------------------------------------
function updateButtons() {
  const s = ui.state;
  $("train").disabled = !ui.valid || s === "running";
  $("pause").disabled = s !== "running";
  $("reset").disabled = !ui.valid;
  $("dl-onnx").disabled = !ui.start;
  $("dl-spec").disabled = !ui.valid;
}

async function train() {
  // A check (and the reset it may bring) still on its way would undo this: drop it.
  clearTimeout(ui.checkTimer);
  ui.checkSeq += 1;
  try {
    const r = await post("/api/train", {
      spec: $("spec").value, data: dataChoice(), speed: Number($("speed").value),
    });
    showCheck(r);
  } catch (e) { status(`train: ${e.message}`); }
}

async function resetNetwork() {
  try {
    const r = await post("/api/train", {
      spec: $("spec").value, data: dataChoice(), run: false, speed: Number($("speed").value),
    });
    if (!r.ok) showCheck(r);
  } catch (e) { status(`reset: ${e.message}`); }
}

async function download(path, body, fallback) {
  status(`preparing ${fallback}...`);
  const response = await post(path, body, true);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    status(`${fallback}: ${data.error || response.status}`);
    return;
  }
  const blob = await response.blob();
  const header = response.headers.get("Content-Disposition") || "";
  const name = (header.match(/filename="([^"]+)"/) || [])[1] || fallback;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  let parity = "";
  const checked = response.headers.get("X-Nnspec-Parity");
  if (checked) {
    const p = JSON.parse(checked);
    parity = `; parity (onnxruntime ${p.provider} vs NumPy, ${p.samples} ${p.inputs} samples): ` +
      `max abs err ${p.max_abs_err.toExponential(2)}, max rel err ${p.max_rel_err.toExponential(2)}`;
  }
  status(`downloaded ${name} (${blob.size.toLocaleString()} bytes)${parity}`);
}

// -- the event stream ---------------------------------------------------------------------
function listen() {
  const source = new EventSource(`/api/events?session=${encodeURIComponent(ui.session)}`);
  ui.source = source;
  source.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
  source.onerror = () => status("connection to the playground server lost; reload the page");
}

function onUpdate(ev) {
  if (ev.start) {
    ui.start = ev.start;
    ui.run = ev.run;
    ui.points = [];
    $("epochs-of").textContent = `of ${ev.start.epochs}`;
    drawLegend();
  }
  ui.state = ev.state;
  ui.points.push(...(ev.points || []));
  if (ev.frame) {
    ui.frame = ev.frame;
    ui.frames += 1;
    $("epoch").textContent = Math.floor(ev.frame.epoch);
    drawPicture();
    drawNeurons();
    drawMetrics();
  }
  drawChart();
  const st = $("state");
  st.textContent = ev.state + (ev.message ? `: ${ev.message}` : "");
  st.className = `state ${ev.state}`;
  if (ev.state === "error") status(ev.message);
  updateButtons();
}

// -- pictures -----------------------------------------------------------------------------
function toCanvas(b, bounds, w, h) {
  // data coordinates -> canvas pixels
  const [x0, x1, y0, y1] = b;
  return (x, y) => [((x - x0) / (x1 - x0)) * w, h - ((y - y0) / (y1 - y0)) * h];
}

function drawPicture() {
  const c = $("picture"), g = c.getContext("2d"), W = c.width, H = c.height;
  const start = ui.start, f = ui.frame;
  g.clearRect(0, 0, W, H);
  if (!start || !f) return;
  if (start.kind === "regions") {
    const n = f.size, rgb = b64bytes(f.regions);
    const img = new ImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      img.data[4 * i] = rgb[3 * i];
      img.data[4 * i + 1] = rgb[3 * i + 1];
      img.data[4 * i + 2] = rgb[3 * i + 2];
      img.data[4 * i + 3] = 255;
    }
    const off = document.createElement("canvas");
    off.width = off.height = n;
    off.getContext("2d").putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.drawImage(off, 0, 0, W, H);
    const at = toCanvas(start.bounds, null, W, H);
    for (const [part, stroke] of [["train", "#fff"], ["test", "#000"]]) {
      const d = start.data[part];
      d.x.forEach((p, k) => {
        const [u, v] = at(p[0], p[1]);
        g.beginPath();
        g.arc(u, v, 3.2, 0, 2 * Math.PI);
        g.fillStyle = CLASS_RGB[d.y[k] % CLASS_RGB.length];
        g.fill();
        g.lineWidth = 1;
        g.strokeStyle = stroke;
        g.stroke();
      });
    }
    axes(g, start.bounds, W, H, start.features[0], start.features[1]);
  } else if (start.kind === "fit") {
    drawFit(g, W, H);
  } else {
    g.fillStyle = "#666";
    g.font = "13px sans-serif";
    g.fillText("no picture for this data's shape", 20, 30);
  }
}

function axes(g, b, W, H, xl, yl) {
  g.fillStyle = "rgba(255,255,255,0.8)";
  g.fillRect(0, H - 16, W, 16);
  g.fillStyle = "#333";
  g.font = "11px sans-serif";
  g.fillText(`${xl}: ${b[0].toFixed(1)} to ${b[1].toFixed(1)}`, 4, H - 4);
  if (yl !== undefined) {
    const t = `${yl}: ${b[2].toFixed(1)} to ${b[3].toFixed(1)}`;
    g.fillText(t, W - g.measureText(t).width - 4, H - 4);
  }
}

function drawFit(g, W, H) {
  const start = ui.start, f = ui.frame, [x0, x1] = start.bounds;
  const ys = [...start.data.train.y, ...start.data.test.y, ...f.curve];
  let lo = Math.min(...ys), hi = Math.max(...ys);
  const pad = 0.08 * (hi - lo || 1);
  lo -= pad; hi += pad;
  const X = (x) => ((x - x0) / (x1 - x0)) * W, Y = (y) => H - 16 - ((y - lo) / (hi - lo)) * (H - 20);
  g.fillStyle = "#fff";
  g.fillRect(0, 0, W, H);
  const n = f.curve.length, xs = (k) => x0 + ((x1 - x0) * k) / (n - 1);
  (f.units || []).forEach((u, j) => {
    g.strokeStyle = `hsla(${(j * 47) % 360}, 60%, 50%, 0.6)`;
    g.lineWidth = 1;
    g.beginPath();
    u.forEach((v, k) => (k ? g.lineTo(X(xs(k)), Y(v)) : g.moveTo(X(xs(k)), Y(v))));
    g.stroke();
  });
  for (const [part, colour] of [["train", "#1f77b4"], ["test", "#d62728"]]) {
    const d = start.data[part];
    g.fillStyle = colour;
    d.x.forEach((p, k) => { g.beginPath(); g.arc(X(p[0]), Y(d.y[k]), 2.5, 0, 2 * Math.PI); g.fill(); });
  }
  g.strokeStyle = "#000";
  g.lineWidth = 2.5;
  g.beginPath();
  f.curve.forEach((v, k) => (k ? g.lineTo(X(xs(k)), Y(v)) : g.moveTo(X(xs(k)), Y(v))));
  g.stroke();
  axes(g, [x0, x1, lo, hi], W, H, start.features[0], start.target[0]);
}

function drawLegend() {
  const s = ui.start, box = $("legend");
  box.innerHTML = "";
  if (s.kind === "regions") {
    (s.classes || []).forEach((c, k) => {
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = CLASS_RGB[k % CLASS_RGB.length];
      sw.style.height = "10px";
      box.appendChild(sw);
      box.appendChild(document.createTextNode(c));
    });
    box.appendChild(document.createTextNode("  (white ring: training point, black: test)"));
  } else if (s.kind === "fit") {
    box.textContent = "black: the prediction; thin lines: each unit's share; blue: training, red: test";
  }
  $("chart-what").textContent = s.task === "classification" ? "— loss (solid), accuracy (dashed)"
    : "— loss (solid), R² (dashed)";
}

function drawMetrics() {
  const m = ui.frame.metrics, key = ui.start.task === "classification" ? "accuracy" : "r2";
  const fmt = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
  const parts = [];
  for (const part of ["train", "test"]) {
    if (m[part]) parts.push(`${part} loss ${fmt(m[part].loss)}, ${key === "r2" ? "R²" : key} ${fmt(m[part][key])}`);
  }
  $("metrics").textContent = parts.join(" · ");
  $("metrics").dataset.testMetric = m.test ? m.test[key] : "";
}

function drawChart() {
  const c = $("chart"), g = c.getContext("2d"), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#fff";
  g.fillRect(0, 0, W, H);
  const pts = ui.points;
  if (!ui.start || pts.length < 1) return;
  const key = ui.start.task === "classification" ? "accuracy" : "r2";
  const ex = Math.max(1, pts[pts.length - 1].epoch);
  let maxLoss = 1e-9;
  for (const p of pts) for (const s of ["train", "test"]) if (p[s] && p[s].loss) maxLoss = Math.max(maxLoss, p[s].loss);
  const X = (e) => 30 + (e / ex) * (W - 36), Y = (v) => H - 14 - v * (H - 22);
  g.strokeStyle = "#ccc";
  g.strokeRect(30, 8, W - 36, H - 22);
  g.fillStyle = "#555";
  g.font = "10px sans-serif";
  g.fillText(maxLoss.toPrecision(2), 0, 14);
  g.fillText("0", 18, H - 14);
  g.fillText(`epoch ${Math.round(ex)}`, W - 60, H - 2);
  // One axis, two scales: the loss runs from 0 to its largest value (the label at the left),
  // the metric from 0 to 1 (the label at the right), lest 1.0 accuracy read as that loss.
  g.textAlign = "right";
  g.fillText(key === "r2" ? "R² 1" : "accuracy 1", W - 9, 20);
  g.textAlign = "left";
  for (const [s, colour] of [["train", "#333"], ["test", "#d62728"]]) {
    for (const [what, dash] of [["loss", []], [key, [4, 3]]]) {
      g.strokeStyle = colour;
      g.setLineDash(dash);
      g.lineWidth = 1.5;
      g.beginPath();
      let started = false;
      for (const p of pts) {
        if (!p[s] || p[s][what] === null || p[s][what] === undefined) continue;
        const v = what === "loss" ? p[s].loss / maxLoss : Math.max(0, Math.min(1, p[s][what]));
        if (started) g.lineTo(X(p.epoch), Y(v)); else { g.moveTo(X(p.epoch), Y(v)); started = true; }
      }
      g.stroke();
    }
  }
  g.setLineDash([]);
}

function diverging(v) {
  // byte 128 = the activation's middle: white; towards 1 orange, towards 255 blue
  const t = (v - 128) / 127, c = t < 0 ? NEG : POS, a = Math.min(1, Math.abs(t));
  return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
}

function drawNeurons() {
  const box = $("neurons"), f = ui.frame, start = ui.start;
  const maps = f.maps || [];
  // Rebuild the canvases only when the layout changes; repaint them every frame.
  const layout = maps.map((m) => `${m.layer}:${m.units.length}`).join(",");
  if (box.dataset.layout !== layout) {
    box.innerHTML = "";
    box.dataset.layout = layout;
    for (const m of maps) {
      const div = document.createElement("div");
      div.className = "layer";
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = `${m.layer} (${m.activation}, ${m.total} units` +
        (m.total > m.units.length ? `, first ${m.units.length} shown)` : ")");
      div.appendChild(name);
      m.units.forEach(() => {
        const c = document.createElement("canvas");
        c.width = c.height = 40;
        div.appendChild(c);
      });
      box.appendChild(div);
    }
  }
  maps.forEach((m, li) => {
    const canvases = box.children[li].querySelectorAll("canvas");
    m.units.forEach((u, j) => paintUnit(canvases[j], b64bytes(u), start.kind, f.map_size));
  });
}

function paintUnit(c, bytes, kind, size) {
  const g = c.getContext("2d");
  if (kind === "regions") {
    const img = new ImageData(size, size);
    for (let i = 0; i < size * size; i++) {
      const [r, gg, b] = diverging(bytes[i]);
      img.data.set([r, gg, b, 255], 4 * i);
    }
    const off = document.createElement("canvas");
    off.width = off.height = size;
    off.getContext("2d").putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.drawImage(off, 0, 0, c.width, c.height);
  } else {
    g.fillStyle = "#fff";
    g.fillRect(0, 0, c.width, c.height);
    g.strokeStyle = "#0877bd";
    g.lineWidth = 1.5;
    g.beginPath();
    bytes.forEach((v, k) => {
      const x = (k / (bytes.length - 1)) * c.width, y = c.height - (v / 255) * c.height;
      k ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}

// -- start --------------------------------------------------------------------------------
async function main() {
  ui.config = await (await fetch("/api/config")).json();
  $("file").textContent = ui.config.file;
  setupData();
  measureChar();
  const ta = $("spec");
  ta.addEventListener("input", () => { drawGutter(); scheduleCheck(false); });
  ta.addEventListener("scroll", drawMarks);
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Tab") { // two spaces, as YAML wants, instead of leaving the editor
      e.preventDefault();
      ta.setRangeText("  ", ta.selectionStart, ta.selectionEnd, "end");
      drawGutter();
      scheduleCheck(false);
    }
  });
  $("train").onclick = train;
  $("pause").onclick = () => post("/api/pause", {}).catch((e) => status(e.message));
  $("reset").onclick = resetNetwork;
  $("speed").onchange = () => post("/api/speed", { speed: Number($("speed").value) }).catch(() => {});
  $("example").onclick = () => { setText(ui.config.templates[ui.dataset]); scheduleCheck(true); };
  $("dl-spec").onclick = () => download("/api/export/spec", { spec: ta.value, data: dataChoice() }, "spec.yaml");
  $("dl-data").onclick = () => download("/api/export/data", { data: dataChoice() }, "data.csv");
  $("dl-onnx").onclick = () => download("/api/export/model", {}, "model.onnx");
  ui.session = (await post("/api/session", {})).session;
  listen();
  window.addEventListener("pagehide", () => {
    fetch("/api/leave", {
      method: "POST", keepalive: true, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session: ui.session }),
    });
  });
  setText(ui.config.spec || ui.config.templates.xor);
  const first = ui.config.data || { name: "xor" }; // an opened spec's own iris or mcycle
  if (first.test_fraction) {
    $("test").value = Math.round(first.test_fraction * 100);
    $("test-out").textContent = $("test").value;
  }
  if (first.features) [$("feature-x").value, $("feature-y").value] = first.features;
  chooseData(first.name);
  updateButtons();
  status(`nnspec ${ui.config.version}: edit the spec, choose the data, press Train`);
}

main().catch((e) => status(`could not start: ${e.message}`));
