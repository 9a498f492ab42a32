// Keeps the gallery live: job progress, new snapshot grids, loss/quality charts, the seed box.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

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

// ---- charts ---------------------------------------------------------------------------
function plot(svg, xs, series, opts = {}) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = 320, H = 160, L = 30, R = 6, T = 8, B = 18;
  const all = series.flatMap(s => s.ys).filter(v => v !== null && Number.isFinite(v));
  if (!xs.length || !all.length) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", W / 2); t.setAttribute("y", H / 2); t.setAttribute("text-anchor", "middle");
    t.setAttribute("class", "label"); t.textContent = opts.empty || "no data yet";
    svg.appendChild(t);
    return;
  }
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  const axis = document.createElementNS(SVG, "path");
  axis.setAttribute("d", `M${L},${T} V${H - B} H${W - R}`);
  axis.setAttribute("class", "axis");
  svg.appendChild(axis);
  for (const [v, y] of [[hi, T + 8], [lo, H - B]]) {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", 2); t.setAttribute("y", y); t.setAttribute("class", "label");
    t.textContent = v.toPrecision(3);
    svg.appendChild(t);
  }
  const xl = document.createElementNS(SVG, "text");
  xl.setAttribute("x", W - R); xl.setAttribute("y", H - 4); xl.setAttribute("text-anchor", "end");
  xl.setAttribute("class", "label"); xl.textContent = `${opts.xlabel || ""} ${x1}`;
  svg.appendChild(xl);
  for (const s of series) {
    const pts = xs.map((x, i) => [x, s.ys[i]]).filter(p => p[1] !== null && Number.isFinite(p[1]));
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "));
    line.setAttribute("class", s.cls);
    line.setAttribute("fill", "none");
    const title = document.createElementNS(SVG, "title");
    title.textContent = s.name;
    line.appendChild(title);
    svg.appendChild(line);
  }
}

async function drawCharts(card) {
  const id = card.dataset.job;
  const r = await fetch(`/jobs/${id}/metrics`);
  if (!r.ok) return;
  const m = await r.json();
  const useSteps = m.steps.length > 1;
  plot($("[data-chart=loss]", card), useSteps ? m.steps : m.epochs, [
    { name: "loss D", cls: "d", ys: useSteps ? m.step_loss_d : m.loss_d },
    { name: "loss G", cls: "g", ys: useSteps ? m.step_loss_g : m.loss_g },
  ], { xlabel: useSteps ? "step" : "epoch" });
  plot($("[data-chart=swd]", card), m.swd_epochs, [{ name: "SWD", cls: "q", ys: m.swd }],
       { xlabel: "epoch", empty: "measured at snapshot epochs" });
}

// ---- live job cards -------------------------------------------------------------------
function addSnapshot(card, id, epoch) {
  const box = $("[data-field=snapshots]", card);
  if ($(`figure[data-epoch="${epoch}"]`, box)) return;
  const placeholder = $("p.muted", box);
  if (placeholder) placeholder.remove();
  const fig = document.createElement("figure");
  fig.dataset.epoch = epoch;
  const a = document.createElement("a");
  a.href = `/jobs/${id}/snapshots/${epoch}.png`; a.target = "_blank"; a.rel = "noopener";
  const img = document.createElement("img");
  img.src = a.href; img.alt = `epoch ${epoch} grid`; img.width = 786; img.height = 786;
  a.appendChild(img);
  const cap = document.createElement("figcaption");
  cap.textContent = `epoch ${epoch}`;
  fig.append(a, cap);
  box.appendChild(fig);
}

function updateCard(card, job) {
  const badge = $("[data-field=state]", card);
  badge.textContent = job.state;
  badge.className = `badge ${job.state}`;
  card.dataset.state = job.state;
  $("[data-field=bar]", card).style.width = `${(100 * job.epoch / job.epochs).toFixed(1)}%`;
  const parts = [`epoch ${job.epoch}/${job.epochs}`];
  if (job.phase === "data" && job.state === "running") parts.push("preparing images…");
  if (job.loss_d !== null) parts.push(`loss D ${fmt(job.loss_d)}`, `loss G ${fmt(job.loss_g)}`);
  if (job.d_x !== null) parts.push(`D(x) ${fmt(job.d_x, 2)}`, `D(G(z)) ${fmt(job.d_g_z, 2)}`);
  if (job.images_per_sec) parts.push(`${Math.round(job.images_per_sec)} img/s`);
  if (job.state === "running" && job.eta_seconds) parts.push(`ETA ${duration(job.eta_seconds)}`);
  if (job.dataset && job.dataset.skipped) parts.push(`${job.dataset.skipped} files skipped`);
  $("[data-field=stats]", card).textContent = parts.join(" · ");
  const err = $("[data-field=error]", card);
  err.hidden = !job.error;
  err.textContent = job.error || "";
  for (const e of job.snapshots) addSnapshot(card, job.job_id, e);
}

const lastChart = new Map();

async function refreshJobs() {
  let data;
  try {
    const r = await fetch("/jobs");
    if (!r.ok) return;
    data = await r.json();
  } catch (e) {
    return;  // the server is restarting; try again on the next tick
  }
  const cards = new Map([...document.querySelectorAll("section.job")].map(c => [c.dataset.job, c]));
  if (data.jobs.some(j => !cards.has(j.job_id))) {
    location.reload();  // a new job: render its card on the server
    return;
  }
  const now = Date.now();
  for (const job of data.jobs) {
    const card = cards.get(job.job_id);
    const changed = card.dataset.state !== job.state;
    updateCard(card, job);
    if (changed || (job.state === "running" && now - (lastChart.get(job.job_id) || 0) > 10000)) {
      lastChart.set(job.job_id, now);
      drawCharts(card);
    }
  }
}

// ---- seed box -------------------------------------------------------------------------
async function showImage(url, img, status) {
  status.textContent = "rendering…";
  status.classList.remove("bad");
  try {
    const r = await fetch(url);
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      const detail = typeof body.detail === "string" ? body.detail
        : (body.detail || []).map(d => d.msg).join("; ");
      throw new Error(detail || `HTTP ${r.status}`);
    }
    const blob = await r.blob();
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    img.hidden = false;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    status.textContent = `from ${r.headers.get("X-Checkpoint") || "the newest checkpoint"}`;
  } catch (e) {
    status.textContent = e.message;
    status.classList.add("bad");
  }
}

function onSeed(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ seed: $("#seed").value || "0", n: $("#n").value });
  const n = Number($("#n").value);
  q.set("nrow", String(Math.max(1, Math.round(Math.sqrt(n)))));
  if ($("#trunc").value) q.set("truncation", $("#trunc").value);
  showImage(`/generate?${q}`, $("#seed-image"), $("#seed-status"));
}

function onInterp(ev) {
  ev.preventDefault();
  const q = new URLSearchParams({ seed_a: $("#seed-a").value || "0", seed_b: $("#seed-b").value || "0",
                                  steps: $("#steps").value || "8" });
  showImage(`/interpolate?${q}`, $("#interp-image"), $("#interp-status"));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#seed-form").addEventListener("submit", onSeed);
  $("#interp-form").addEventListener("submit", onInterp);
  $("#random-seed").addEventListener("click", () => {
    $("#seed").value = String(Math.floor(Math.random() * 2 ** 32));
    $("#seed-form").requestSubmit();
  });
  for (const card of document.querySelectorAll("section.job")) drawCharts(card);
  refreshJobs();
  setInterval(refreshJobs, 2000);
});
