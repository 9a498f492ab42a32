// Keeps the gallery live: job progress and actions, new grids, the charts, the seed box.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "dcgan-faces-token";

function fmt(x, digits = 3) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

function duration(s) {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// The server's `detail`: a string, or (422) a list of problems.
async function errorText(r) {
  const body = await r.json().catch(() => ({}));
  const detail = typeof body.detail === "string" ? body.detail
    : (body.detail || []).map(d => d.msg).join("; ");
  return detail || `HTTP ${r.status}`;
}

// ---- charts ---------------------------------------------------------------------------
function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// About `count` round tick values covering [lo, hi].
function ticks(lo, hi, count) {
  const raw = (hi - lo) / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const gaps = s => Math.abs((hi - lo) / s - count);
  const step = [1, 2, 5, 10].map(m => m * mag).reduce((best, s) => (gaps(s) < gaps(best) ? s : best));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickText(v) {
  const a = Math.abs(v);
  if (a >= 10000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

// Lines of `series` ({name, cls, ys}) over `xs`, with axes, ticks and axis labels, drawn in
// the svg's own pixel size so the text stays legible at any width.
function plot(svg, xs, series, opts) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = Math.max(Math.round(svg.getBoundingClientRect().width) || 320, 200), H = 190;
  const L = 46, R = 10, T = 10, B = 36;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("height", H);
  const all = series.flatMap(s => s.ys).filter(v => v !== null && Number.isFinite(v));
  if (!xs.length || !all.length) {
    svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "label" },
                          opts.empty || "no data yet"));
    return;
  }
  let [lo, hi] = opts.yrange || [Math.min(...all), Math.max(...all)];
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  for (const v of ticks(lo, hi, 4)) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 4, y: sy(v) + 3, "text-anchor": "end", class: "label" }, tickText(v)));
  }
  for (const v of ticks(x0, x1, Math.max(2, Math.floor((W - L - R) / 70)))) {
    svg.appendChild(svgEl("text", { x: sx(v), y: H - B + 13, "text-anchor": "middle", class: "label" }, tickText(v)));
  }
  svg.appendChild(svgEl("path", { d: `M${L},${T} V${H - B} H${W - R}`, class: "axis", fill: "none" }));
  svg.appendChild(svgEl("text", { x: L + (W - L - R) / 2, y: H - 4, "text-anchor": "middle", class: "axis-title" },
                        opts.xlabel));
  const yMid = T + (H - T - B) / 2;
  svg.appendChild(svgEl("text", { x: 11, y: yMid, "text-anchor": "middle", class: "axis-title",
                                  transform: `rotate(-90 11 ${yMid})` }, opts.ylabel));
  for (const s of series) {
    const pts = xs.map((x, i) => [x, s.ys[i]]).filter(p => p[1] !== null && Number.isFinite(p[1]));
    if (!pts.length) continue;
    const line = svgEl("polyline", {
      points: pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
      class: `line ${s.cls}`, fill: "none" });
    line.appendChild(svgEl("title", {}, s.name));
    svg.appendChild(line);
    if (pts.length === 1) {  // one point draws no line: mark it
      svg.appendChild(svgEl("circle", { cx: sx(pts[0][0]), cy: sy(pts[0][1]), r: 2.5, class: `dot ${s.cls}` }));
    }
  }
}

const metricsCache = new Map();

function drawCharts(card) {
  const m = metricsCache.get(card.dataset.job);
  if (!m || !$("[data-chart=loss]", card)) return;
  // Interval points once there are any (an epoch has several); per-epoch means otherwise.
  const bySteps = m.steps.length > 0 && m.steps.length >= m.epochs.length;
  const xs = bySteps ? m.steps : m.epochs;
  const xlabel = bySteps ? "step" : "epoch";
  plot($("[data-chart=loss]", card), xs, [
    { name: "D loss", cls: "d", ys: bySteps ? m.step_loss_d : m.loss_d },
    { name: "G loss", cls: "g", ys: bySteps ? m.step_loss_g : m.loss_g },
  ], { xlabel, ylabel: "loss" });
  const dxSteps = bySteps && (m.step_d_x || []).some(v => v !== null);
  plot($("[data-chart=dx]", card), dxSteps ? m.steps : m.epochs, [
    { name: "D(x)", cls: "d", ys: dxSteps ? m.step_d_x : m.d_x },
    { name: "D(G(z))", cls: "g", ys: dxSteps ? m.step_d_g_z : m.d_g_z },
  ], { xlabel: dxSteps ? "step" : "epoch", ylabel: "D output", yrange: [0, 1] });
  plot($("[data-chart=swd]", card), m.swd_epochs, [{ name: "SWD ×10³", cls: "q", ys: m.swd }],
       { xlabel: "epoch", ylabel: "SWD ×10³", empty: "measured at snapshot epochs (swd_images > 0)" });
  plot($("[data-chart=copies]", card), m.copy_epochs || [],
       [{ name: "copy rate %", cls: "c", ys: (m.copy_rate || []).map(v => v * 100) }],
       { xlabel: "epoch", ylabel: "copies %", yrange: [0, 100],
         empty: "measured at snapshot epochs (swd_images > 0)" });
}

async function loadCharts(card) {
  if (card.dataset.state === "damaged") return;
  const r = await fetch(`/jobs/${card.dataset.job}/metrics`).catch(() => null);
  if (!r || !r.ok) return;
  metricsCache.set(card.dataset.job, await r.json());
  drawCharts(card);
}

// ---- the API token, asked once per tab ---------------------------------------------------
function askToken(why) {
  const dialog = $("#token-dialog");
  const input = $("#token-input");
  if (why) $("#token-why").textContent = why;
  input.value = "";
  return new Promise(resolve => {
    const done = value => {
      dialog.removeEventListener("close", onClose);
      $("#token-cancel").removeEventListener("click", onCancel);
      resolve(value);
    };
    const onClose = () => done(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
    const onCancel = () => { dialog.returnValue = ""; dialog.close(); };
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    $("#token-cancel").addEventListener("click", onCancel);
    dialog.showModal();
    input.focus();
  });
}

// "Train more…": how many epochs in all, more than the job has (the browser checks the bound).
function askEpochs(card) {
  const dialog = $("#extend-dialog");
  const input = $("#extend-epochs");
  const done = Number(card.dataset.epoch || 0);
  $("#extend-why").textContent = `Job ${card.dataset.job} has ${done} epoch${done === 1 ? "" : "s"}. `
    + "It trains on from its last checkpoint, with the same settings, to this many in all.";
  input.min = String(done + 1);
  input.value = String(Math.max(done * 2, done + 1));
  return new Promise(resolve => {
    const finish = value => {
      dialog.removeEventListener("close", onClose);
      $("#extend-cancel").removeEventListener("click", onCancel);
      resolve(value);
    };
    const onClose = () => finish(dialog.returnValue === "ok" ? Number(input.value) : null);
    const onCancel = () => { dialog.returnValue = ""; dialog.close(); };
    dialog.returnValue = "";
    dialog.addEventListener("close", onClose);
    $("#extend-cancel").addEventListener("click", onCancel);
    dialog.showModal();
    input.select();
  });
}

// A state-changing request with the tab's token; a 401 forgets it and asks once more.
async function authed(method, url, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      token = await askToken(attempt ? "That token was refused. Enter the server's API_TOKEN." : null);
      if (!token) throw new Error("not done: this needs the API token");
      sessionStorage.setItem(TOKEN_KEY, token);
    }
    const headers = { Authorization: `Bearer ${token}` };
    const raw = body instanceof Blob;  // a file goes as it is, with its own type
    if (body !== undefined) headers["Content-Type"] = raw ? body.type : "application/json";
    const r = await fetch(url, { method, headers,
                                 body: body === undefined ? undefined : raw ? body : JSON.stringify(body) });
    if (r.status !== 401) return r;
    sessionStorage.removeItem(TOKEN_KEY);
  }
  throw new Error("the server refused the token (401)");
}

// ---- the served model -----------------------------------------------------------------
let served = null;  // GET /models/default, or null when nothing can be served

async function refreshServed() {
  try {
    const r = await fetch("/models/default");
    served = r.ok ? await r.json() : null;
  } catch (e) {
    return;
  }
  $("#served").textContent = served
    ? `${served.job_id}/${served.checkpoint}: ${served.reason || (served.pinned ? "pinned" : "newest")}`
    : "no model yet";
  $("#unpin").hidden = !(served && served.pinned);
  for (const card of $$("section.job")) {
    $("[data-field=serving]", card).hidden = !(served && served.job_id === card.dataset.job);
    showActions(card);
  }
}

// ---- live job cards -------------------------------------------------------------------
// Which buttons a job in each state gets (pin needs a checkpoint, see showActions).
const ACTIONS = {
  queued: ["cancel"], running: ["pin", "cancel"], succeeded: ["pin", "extend", "delete"],
  cancelled: ["pin", "resume", "delete"], failed: ["pin", "resume", "delete"], damaged: ["delete"],
};

function showActions(card) {
  const allowed = ACTIONS[card.dataset.state] || [];
  const pinnedHere = served && served.pinned && served.job_id === card.dataset.job;
  for (const button of $$("[data-action]", card)) {
    const a = button.dataset.action;
    button.hidden = !allowed.includes(a) || (a === "pin" && (!card.dataset.checkpoint || pinnedHere));
  }
}

// A new grid joins the strip in epoch order and, when it is the newest, takes the large frame.
function addSnapshot(card, id, epoch) {
  const box = $("[data-field=snapshots]", card);
  if ($(`figure[data-epoch="${epoch}"]`, box)) return;
  const url = `/jobs/${id}/snapshots/${epoch}.png`;
  const fig = document.createElement("figure");
  fig.dataset.epoch = epoch;
  const a = document.createElement("a");
  a.href = url; a.target = "_blank"; a.rel = "noopener";
  const img = document.createElement("img");
  img.src = url; img.alt = `epoch ${epoch} grid`; img.width = 786; img.height = 786;
  a.appendChild(img);
  const cap = document.createElement("figcaption");
  cap.textContent = `epoch ${epoch}`;
  fig.append(a, cap);
  const later = $$("figure[data-epoch]", box).find(f => Number(f.dataset.epoch) > epoch);
  box.insertBefore(fig, later || null);
  $("[data-field=progression]", card).hidden = false;
  const newest = $("[data-field=newest]", card);
  if (!later && newest) {
    const big = $("img", newest);
    big.src = url; big.alt = `the newest grid, epoch ${epoch}`;
    $("a", newest).href = url;
    $("[data-field=newest-epoch]", newest).textContent = `epoch ${epoch}`;
    newest.hidden = false;
    $("[data-field=no-grid]", card).hidden = true;
  }
}

// reals.png is written once the images are decoded: a card whose job was queued or running
// without one asks for it once the job is past that (one request, so no 404 every tick).
function showReals(card, job) {
  const fig = $("[data-field=reals]", card);
  if (!fig || !fig.hidden) return;
  if (job.state === "queued" || job.state === "running") card.dataset.wantReals = "1";
  const ready = (job.state === "running" && job.phase === "train") || (job.state !== "running" && job.epoch > 0);
  if (!card.dataset.wantReals || !ready) return;
  delete card.dataset.wantReals;
  const img = $("img", fig);
  img.loading = "eager";  // a lazy image inside a hidden figure would never load
  img.onload = () => { fig.hidden = false; };
  img.src = `/jobs/${job.job_id}/reals.png`;
}

// What the job is doing, in words, then its numbers. Speed and ETA are the server's, from this
// attempt's training time only: never the time it queued or decoded.
function statsText(job) {
  const parts = [`epoch ${job.epoch}/${job.epochs}`];
  const running = job.state === "running";
  if (job.state === "queued") parts.push("queued: waiting for a worker");
  else if (running && job.phase === "data") {
    parts.push("decoding images");
    return parts.join(" · ");
  } else if (running && !job.images_per_sec) parts.push("training, measuring speed");
  if (job.loss_d !== null) parts.push(`loss D ${fmt(job.loss_d)}`, `loss G ${fmt(job.loss_g)}`);
  if (job.d_x !== null) parts.push(`D(x) ${fmt(job.d_x, 2)}`, `D(G(z)) ${fmt(job.d_g_z, 2)}`);
  if (job.images_per_sec) parts.push(`${Math.round(job.images_per_sec)} img/s training`);
  if (running && job.eta_seconds) parts.push(`ETA ${duration(job.eta_seconds)}`);
  return parts.join(" · ");
}

// What decoding made of the files, as soon as it is known: images used, each skipped file
// with its reason (the server keeps the first 20), then how many more.
function showDataReport(card, dataset) {
  const box = $("[data-field=data-report]", card);
  if (!box) return;
  box.hidden = !dataset;
  if (!dataset) return;
  const key = JSON.stringify(dataset);
  if (box.dataset.shown === key) return;  // unchanged: keep the list open if it was opened
  box.dataset.shown = key;
  box.replaceChildren();
  const line = document.createElement("span");
  line.textContent = `${dataset.images} images used of ${dataset.files_found} files`
    + (dataset.skipped ? ` · ${dataset.skipped} skipped` : "");
  box.appendChild(line);
  const examples = dataset.skipped_examples || [];
  if (!dataset.skipped) return;
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "which files, and why";
  const list = document.createElement("ul");
  for (const [name, reason] of examples) {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = name;
    li.append(code, `: ${reason}`);
    list.appendChild(li);
  }
  if (dataset.skipped > examples.length) {
    const li = document.createElement("li");
    li.textContent = `… and ${dataset.skipped - examples.length} more`;
    list.appendChild(li);
  }
  details.append(summary, list);
  box.appendChild(details);
}

function updateCard(card, job) {
  const badge = $("[data-field=state]", card);
  badge.textContent = job.state;
  badge.className = `badge ${job.state}`;
  card.dataset.state = job.state;
  card.dataset.epoch = job.epoch;
  card.dataset.checkpoint = job.checkpoint || "";
  showActions(card);
  if (job.state === "damaged") {
    const err = $("[data-field=error]", card);
    if (err) err.textContent = job.error || "";
    return;
  }
  if (!$("[data-field=bar]", card)) { location.reload(); return; }  // was damaged: render anew
  $("[data-field=bar]", card).style.width = `${job.epochs ? (100 * job.epoch / job.epochs).toFixed(1) : 0}%`;
  $("[data-field=stats]", card).textContent = statsText(job);
  showDataReport(card, job.dataset);
  for (const key of ["error", "warning"]) {
    const el = $(`[data-field=${key}]`, card);
    el.hidden = !job[key];
    el.textContent = job[key] || "";
  }
  for (const e of job.snapshots) addSnapshot(card, job.job_id, e);
  showReals(card, job);
}

const lastChart = new Map();

function updateCharts(card, job, changed) {
  const now = Date.now();
  if (changed || (job.state === "running" && now - (lastChart.get(job.job_id) || 0) > 10000)) {
    lastChart.set(job.job_id, now);
    loadCharts(card);
  }
}

async function refreshJobs() {
  let data;
  try {
    const r = await fetch("/jobs");
    if (!r.ok) return;
    data = await r.json();
  } catch (e) {
    return;  // the server is restarting; try again on the next tick
  }
  const cards = new Map($$("section.job").map(c => [c.dataset.job, c]));
  if (data.jobs.some(j => !cards.has(j.job_id))) {
    location.reload();  // a new job: render its card on the server
    return;
  }
  const present = new Set(data.jobs.map(j => j.job_id));
  for (const [id, card] of cards) if (!present.has(id)) card.remove();  // deleted elsewhere
  for (const job of data.jobs) {
    const card = cards.get(job.job_id);
    const changed = card.dataset.state !== job.state;
    updateCard(card, job);
    updateCharts(card, job, changed);
    if (changed) refreshServed();
  }
  fillJobChoices(data.jobs);
}

async function refreshCard(card) {
  const r = await fetch(`/jobs/${card.dataset.job}`);
  if (r.status === 404) { card.remove(); return; }
  if (!r.ok) return;
  const job = await r.json();
  const changed = card.dataset.state !== job.state;
  updateCard(card, job);
  updateCharts(card, job, changed);
}

async function onAction(ev) {
  const button = ev.target.closest("[data-action]");
  if (!button) return;
  const card = button.closest("section.job");
  const id = card.dataset.job;
  const status = $("[data-field=action-status]", card);
  const action = button.dataset.action;
  let request;
  if (action === "pin") request = ["POST", "/models/default", { job_id: id }];
  else if (action === "cancel") request = ["POST", `/jobs/${id}/cancel`];
  else if (action === "resume") request = ["POST", `/jobs/${id}/resume`];
  else if (action === "extend") {
    const epochs = await askEpochs(card);
    if (epochs === null) return;
    request = ["POST", `/jobs/${id}/resume`, { epochs }];
  } else if (action === "delete") {
    if (!confirm(`Delete job ${id} and all its files (checkpoints, grids, metrics)?`)) return;
    request = ["DELETE", `/jobs/${id}`];
  }
  status.classList.remove("bad");
  status.textContent = "…";
  for (const b of $$("[data-action]", card)) b.disabled = true;
  try {
    const r = await authed(...request);
    if (!r.ok) throw new Error(await errorText(r));
    if (action === "delete") { card.remove(); refreshServed(); return; }
    status.textContent = {
      pin: "now served by /generate", cancel: "cancel requested", resume: "resumed", extend: "resumed",
    }[action];
    await refreshCard(card);
    await refreshServed();
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  } finally {
    for (const b of $$("[data-action]", card)) b.disabled = false;
  }
}

async function onUnpin() {
  const status = $("#top-status");
  status.classList.remove("bad");
  try {
    const r = await authed("DELETE", "/models/default");
    if (!r.ok) throw new Error(await errorText(r));
    status.textContent = "unpinned: /generate serves the default rule's choice (above)";
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
  refreshServed();
}

// ---- the seed box: which model answers ----------------------------------------------------
function fillJobChoices(jobs) {
  const select = $("#model-job");
  const current = select.value;
  const choices = jobs.filter(j => j.checkpoint && j.state !== "damaged")
    .map(j => [j.job_id, `${j.job_id} (${j.state}, epoch ${j.epoch})`]);
  const have = [...select.options].slice(1).map(o => [o.value, o.text]);
  if (JSON.stringify(choices) === JSON.stringify(have)) return;
  while (select.options.length > 1) select.remove(1);
  for (const [value, label] of choices) select.add(new Option(label, value));
  select.value = choices.some(([value]) => value === current) ? current : "";
  if (select.value !== current) fillEpochChoices();
}

async function fillEpochChoices() {
  const select = $("#model-epoch");
  const job = $("#model-job").value;
  while (select.options.length > 1) select.remove(1);
  select.value = "";
  select.disabled = !job;
  if (!job) return;
  const r = await fetch(`/jobs/${job}/checkpoints`).catch(() => null);
  if (!r || !r.ok) return;
  const epochs = new Map();
  for (const c of (await r.json()).checkpoints) {
    if (c.batch) continue;  // a mid-epoch checkpoint (kept to resume) is no choice here
    const notes = [c.swd !== null && c.swd !== undefined ? `SWD ${c.swd.toFixed(2)}` : "",
                   typeof c.copy_rate === "number" ? `copies ${Math.round(c.copy_rate * 100)}%` : "",
                   c.pinned ? "pinned" : ""];
    epochs.set(c.epoch, [`epoch ${c.epoch}`, ...notes.filter(Boolean)].join(" · "));
  }
  for (const [e, label] of epochs) select.add(new Option(label, String(e)));
}

function modelQuery(q) {
  if ($("#model-job").value) q.set("job", $("#model-job").value);
  if ($("#model-job").value && $("#model-epoch").value) q.set("epoch", $("#model-epoch").value);
  return q;
}

async function showImage(url, img, status) {
  status.textContent = "rendering…";
  status.classList.remove("bad");
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(await errorText(r));
    const blob = await r.blob();
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    const which = r.headers.get("X-Checkpoint") || "the served checkpoint";
    status.textContent = `answered by ${which}${$("#model-job").value ? "" : " (the default model)"}`;
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

// ---- the seed box: sliders along the model's latent directions (GET /directions) -------------
const SLIDERS = 6;  // the first few directions (most variance first)
let directionsFor = null;  // the model query the sliders were made for

// "0:1.5,3:-2" from the sliders that are not at 0, or "" when all are.
function editValue() {
  return $$("#edit-sliders input").filter(s => Number(s.value) !== 0)
    .map(s => `${s.dataset.index}:${Number(s.value)}`).join(",");
}

async function loadDirections() {
  const key = modelQuery(new URLSearchParams()).toString();
  if (directionsFor === key) return;
  const box = $("#edit-sliders"), status = $("#edit-status");
  status.textContent = "computing the model's directions…";
  status.classList.remove("bad");
  try {
    const r = await fetch(`/directions?${key}`);
    if (!r.ok) throw new Error(await errorText(r));
    const body = await r.json();
    directionsFor = key;
    box.replaceChildren(...body.directions.slice(0, SLIDERS).map(d => {
      const label = document.createElement("label");
      label.title = `${(100 * d.variance).toFixed(1)}% of the early features' variance`;
      const name = document.createElement("span");
      name.textContent = `direction ${d.index}`;
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: "-5", max: "5", step: "0.5", value: "0" });
      slider.dataset.index = String(d.index);
      slider.setAttribute("aria-label", `amount along direction ${d.index}`);
      const out = document.createElement("output");
      out.textContent = "0";
      slider.addEventListener("input", () => { out.textContent = slider.value; editSoon(); });
      label.append(name, slider, out);
      return label;
    }));
    status.textContent = `${body.checkpoint} of ${body.job_id}: ${body.directions.length} directions`;
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

let editTimer = 0;
function editSoon() {  // debounced: one render when the slider rests, not one per pixel of travel
  clearTimeout(editTimer);
  editTimer = setTimeout(() => $("#seed-form").requestSubmit(), 250);
}

function resetEdits() {
  for (const s of $$("#edit-sliders input")) {
    s.value = "0";
    s.nextElementSibling.textContent = "0";
  }
  $("#seed-form").requestSubmit();
}

function onSeed(ev) {
  ev.preventDefault();
  const n = Number($("#n").value);
  const q = new URLSearchParams({ seed: $("#seed").value || "0", n: String(n),
                                  nrow: String(Math.max(1, Math.round(Math.sqrt(n)))) });
  if ($("#trunc").value) q.set("truncation", $("#trunc").value);
  if ($("#best-of").value) q.set("best_of", $("#best-of").value);
  if (editValue()) q.set("edit", editValue());
  showImage(`/generate?${modelQuery(q)}`, $("#seed-image"), $("#seed-status"));
}

function onMoreLike() {
  const q = new URLSearchParams({ seed: $("#seed").value || "0", n: "16", nrow: "4", spread: "0.3" });
  if ($("#trunc").value) q.set("truncation", $("#trunc").value);
  if (editValue()) q.set("edit", editValue());
  showImage(`/variations?${modelQuery(q)}`, $("#seed-image"), $("#seed-status"));
}

// The training images nearest to a face (GET /nearest with `q`), as figures in `box`.
async function showNearest(q, box, status, subject) {
  status.textContent = "searching the training images…";
  status.classList.remove("bad");
  try {
    const r = await fetch(`/nearest?${q}`);
    if (!r.ok) throw new Error(await errorText(r));
    const body = await r.json();
    box.replaceChildren(...body.neighbours.map((n) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = n.url;
      img.alt = `training image ${n.index}`;
      const cap = document.createElement("figcaption");
      cap.textContent = n.distance.toFixed(0);
      fig.append(img, cap);
      return fig;
    }));
    box.hidden = false;
    const near = body.neighbours.length ? body.neighbours[0].distance : NaN;
    status.textContent = `nearest of ${body.images} training images to ${subject}: ` +
      `distance ${near.toFixed(0)}; a real image's nearest other real image is typically ` +
      `${body.reference.toFixed(0)} away (much closer suggests a copy)`;
  } catch (e) {
    box.hidden = true;
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

function onNearest() {
  const q = new URLSearchParams({ seed: $("#seed").value || "0", i: "0", k: "8" });
  if ($("#trunc").value) q.set("truncation", $("#trunc").value);
  showNearest(modelQuery(q), $("#nearest"), $("#nearest-status"), `face 0 of seed ${q.get("seed")}`);
}

const PICTURE_TYPES = ["image/png", "image/jpeg", "image/webp"];

// POST /project with the chosen file; show it beside the face found, its PSNR and its nearest.
async function onProject(ev) {
  ev.preventDefault();
  const file = $("#project-file").files[0];
  const status = $("#project-status"), pair = $("#project-pair");
  status.classList.remove("bad");
  if (!file || !PICTURE_TYPES.includes(file.type)) {
    status.textContent = "choose a PNG, JPEG or WebP picture";
    status.classList.add("bad");
    return;
  }
  status.textContent = "looking for the face closest to your picture (this takes a while)…";
  try {
    const r = await authed("POST", `/project?${modelQuery(new URLSearchParams())}`, file);
    if (!r.ok) throw new Error(await errorText(r));
    const body = await r.json();
    const picture = $("#project-picture");
    if (picture.src.startsWith("blob:")) URL.revokeObjectURL(picture.src);
    picture.src = URL.createObjectURL(file);
    $("#project-face").src = body.url;
    $("#project-caption").textContent = `the model's closest face: ${body.psnr.toFixed(1)} dB PSNR`;
    pair.hidden = false;
    status.textContent = `latent ${body.latent} on ${body.checkpoint} after ${body.steps} steps ` +
      `(${body.seconds.toFixed(1)} s); ${body.psnr >= 20 ? "a close likeness" : "only a loose likeness"}`;
    const q = new URLSearchParams({ latent: body.latent, k: "8" });
    showNearest(q, $("#project-nearest"), $("#project-nearest-status"), "the projected face");
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

function onInterp(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ seed_a: $("#seed-a").value || "0", seed_b: $("#seed-b").value || "0",
                                  steps: $("#steps").value || "8" });
  showImage(`/interpolate?${modelQuery(q)}`, $("#interp-image"), $("#interp-status"));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#seed-form").addEventListener("submit", onSeed);
  $("#interp-form").addEventListener("submit", onInterp);
  $("#random-seed").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * 2 ** 32));
    $("#seed-form").requestSubmit();
  });
  $("#more-like").addEventListener("click", onMoreLike);
  $("#nearest-btn").addEventListener("click", onNearest);
  $("#project-form").addEventListener("submit", onProject);
  $("#model-job").addEventListener("change", fillEpochChoices);
  $("#edit-box").addEventListener("toggle", () => { if ($("#edit-box").open) loadDirections(); });
  $("#edit-reset").addEventListener("click", resetEdits);
  for (const select of ["#model-job", "#model-epoch"]) {  // another model has other directions
    $(select).addEventListener("change", () => {
      directionsFor = null;
      $("#edit-sliders").replaceChildren();
      if ($("#edit-box").open) loadDirections();
    });
  }
  $("#unpin").addEventListener("click", onUnpin);
  $("main").addEventListener("click", onAction);
  // Widths come as data (the page's Content-Security-Policy allows no inline style attributes).
  for (const bar of $$("[data-field=bar]")) bar.style.width = bar.dataset.width;
  for (const card of $$("section.job")) { showActions(card); loadCharts(card); }
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => $$("section.job").forEach(drawCharts), 150);
  });
  refreshServed();
  refreshJobs();
  setInterval(refreshJobs, 2000);
  setInterval(refreshServed, 10000);  // pinned elsewhere (the CLI, another tab)
});
