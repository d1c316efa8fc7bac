// gan3d viewer page: plain JavaScript, no build step. Talks to the viewer's server (server.py):
//   GET /api/info, /api/scene, /api/render (PNG), /api/export/{png,video,mesh}.
//
// Responsiveness on a CPU: while the camera moves, views are requested at the model's preview
// resolution; when the pointer stops (or 250 ms after the last change) the view is refined at the full
// resolution. One request is in flight at a time: a preview is allowed to finish (so a drag shows
// frames), a full-resolution render that has gone stale is aborted, and the server drops a queued
// view of this page when a newer one arrives (HTTP 409, ignored here).
"use strict";

const $ = (id) => document.getElementById(id);
const REFINE_DELAY_MS = 250;
const DRAG_DEGREES_PER_PIXEL = 0.4;
const OBJECT_EDITS = [
  ["translate_x", "move x"], ["translate_y", "move y"], ["translate_z", "move z"],
  ["rotate", "rotate °"], ["scale", "scale"],
];

const clientId = Math.random().toString(36).slice(2, 12);
const state = { yaw: 0, pitch: 0, radius: 1, fov: 30, seed: 0, psi: 0.7, mode: "image", edits: {} };
let info = null;
let scene = { objects: [] };
let frames = 0;
let inflight = null;  // {controller, full, key}
let wanted = null;    // {full}
let shownKey = null;  // query of the frame on screen
let refineTimer = null;
let drag = null;

// For automation (tests/evaluators/viewer/test_viewer_browser.py drives the page in Chromium): the
// controls' state, the frames shown (newest last) and whether every requested view has arrived.
const shownFrames = [];
window.gan3dViewer = {
  state,
  frames: shownFrames,
  shownQuery: () => shownKey,
  idle: () => info !== null && inflight === null && wanted === null && refineTimer === null && shownKey !== null,
};

// ------------------------------------------------------------------ small helpers
function round(x, digits = 4) { return Number(Number(x).toFixed(digits)); }
function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }
function wrapDegrees(x) { return ((((x + 180) % 360) + 360) % 360) - 180; }

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

async function errorText(response) {
  try { return (await response.json()).error || response.statusText; } catch { return response.statusText; }
}

// ------------------------------------------------------------------ query strings
function latentParams() {
  const p = new URLSearchParams({ seed: String(state.seed), psi: String(round(state.psi, 3)) });
  for (const [key, value] of Object.entries(state.edits)) p.append("edit", `${key}:${round(value)}`);
  return p;
}

function viewParams(full) {
  const p = latentParams();
  p.set("yaw", String(round(state.yaw, 2)));
  p.set("pitch", String(round(state.pitch, 2)));
  p.set("radius", String(round(state.radius)));
  p.set("fov", String(round(state.fov, 2)));
  p.set("mode", state.mode);
  if (!full) p.set("res", String(info.preview_resolution));
  return p;
}

// ------------------------------------------------------------------ rendering
function request(full) {
  wanted = { full };
  clearTimeout(refineTimer);
  refineTimer = full ? null : setTimeout(() => { refineTimer = null; request(true); }, REFINE_DELAY_MS);
  pump();
}

function pump() {
  if (!wanted || !info) return;
  const full = wanted.full;
  const params = viewParams(full);
  const key = params.toString();
  if (inflight) {
    if (inflight.key === key) { wanted = null; return; }  // already on its way
    if (!inflight.full) return;                           // a preview finishes first, then pump() again
    inflight.controller.abort();                           // a stale full-resolution render: drop it
    inflight = null;
  }
  wanted = null;
  if (key === shownKey) return;
  params.set("client", clientId);
  send(params, key, full);
}

async function send(params, key, full) {
  const controller = new AbortController();
  const mine = { controller, full, key };
  inflight = mine;
  const started = performance.now();
  try {
    const response = await fetch(`/api/render?${params}`, { signal: controller.signal });
    if (response.status === 409) return;  // superseded on the server by a newer view of this page
    if (!response.ok) { setStatus(await errorText(response), true); return; }
    const blob = await response.blob();
    const view = $("view");
    const url = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      view.onload = resolve;
      view.onerror = () => reject(new Error("the server sent an image the browser cannot show"));
      view.src = url;
    });
    if (view.dataset.url) URL.revokeObjectURL(view.dataset.url);
    view.dataset.url = url;
    view.dataset.mode = params.get("mode");
    view.dataset.full = String(full);
    shownKey = key;
    frames += 1;
    const total = performance.now() - started;
    const rendered = Number(response.headers.get("X-Render-Milliseconds"));
    const resolution = response.headers.get("X-Render-Resolution");
    $("frame-time").textContent =
      `frame ${frames} · ${Math.round(total)} ms (render ${Math.round(rendered)} ms) · ${resolution} px` +
      (full ? "" : " preview");
    view.dataset.frame = String(frames);
    shownFrames.push({ frame: frames, full, mode: view.dataset.mode, resolution: Number(resolution) });
    if (shownFrames.length > 100) shownFrames.shift();
    if ($("status").classList.contains("error")) setStatus("");
  } catch (error) {
    if (error.name !== "AbortError") setStatus(String(error.message || error), true);
  } finally {
    if (inflight === mine) {
      inflight = null;
      pump();
    }
  }
}

// ------------------------------------------------------------------ controls <-> state
function showValues() {
  $("yaw").value = state.yaw; $("yaw-value").textContent = `${round(state.yaw, 1)}°`;
  $("pitch").value = state.pitch; $("pitch-value").textContent = `${round(state.pitch, 1)}°`;
  $("radius").value = state.radius; $("radius-value").textContent = round(state.radius, 3);
  $("fov").value = state.fov; $("fov-value").textContent = `${round(state.fov, 1)}°`;
  $("psi").value = state.psi; $("psi-value").textContent = round(state.psi, 2);
  $("seed").value = state.seed;
  document.querySelector(`input[name=mode][value=${state.mode}]`).checked = true;
  showObjectEdits();
}

function resetView() {
  const d = info.defaults;
  Object.assign(state, { yaw: d.yaw, pitch: d.pitch, radius: d.radius, fov: d.fov });
}

function bindSlider(id, name) {
  const input = $(id);
  input.addEventListener("input", () => { state[name] = Number(input.value); showValues(); request(false); });
  input.addEventListener("change", () => request(true));
}

async function setSeed(seed) {
  if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) {
    setStatus("the seed must be an integer from 0 to 4294967295", true);
    showValues();
    return;
  }
  state.seed = seed;
  state.edits = {};
  await loadScene();
  showValues();
  request(true);
}

// ------------------------------------------------------------------ objects (compositional generators)
async function loadScene() {
  if (!info.objects) return;
  const response = await fetch(`/api/scene?seed=${state.seed}&psi=${round(state.psi, 3)}`);
  if (!response.ok) { setStatus(await errorText(response), true); return; }
  scene = await response.json();
}

function buildObjectControls() {
  const select = $("object");
  for (let i = 0; i < info.objects; i++) select.add(new Option(`object ${i}`, String(i)));
  const holder = $("object-edits");
  for (const [name, label] of OBJECT_EDITS) {
    const text = document.createElement("label");
    text.htmlFor = `edit-${name}`;
    text.textContent = label;
    const input = document.createElement("input");
    input.type = "range";
    input.id = `edit-${name}`;
    const output = document.createElement("output");
    output.id = `edit-${name}-value`;
    holder.append(text, input, output);
    input.addEventListener("input", () => {
      state.edits[`${select.value}:${name}`] = Number(input.value);
      showObjectEdits();
      request(false);
    });
    input.addEventListener("change", () => request(true));
  }
  select.addEventListener("change", showObjectEdits);
  $("reset-objects").addEventListener("click", () => { state.edits = {}; showObjectEdits(); request(true); });
  $("objects").hidden = false;
}

function showObjectEdits() {
  if (!info || !info.objects) return;
  const index = Number($("object").value || 0);
  const object = scene.objects[index];
  if (!object) return;
  for (const [name] of OBJECT_EDITS) {
    const { low, value, high } = object.edits[name];
    const edited = state.edits[`${index}:${name}`];
    const input = $(`edit-${name}`);
    input.min = low; input.max = high; input.step = (high - low) / 200 || 0.001;
    input.value = edited ?? value;
    $(`edit-${name}-value`).textContent = round(edited ?? value, 3);
  }
}

// ------------------------------------------------------------------ pointer: orbit and zoom
function bindPointer() {
  const frame = $("view-frame");
  frame.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY };
    frame.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  frame.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!dx && !dy) return;
    drag = { x: event.clientX, y: event.clientY };
    // Dragging right turns the object right: the camera moves towards -x (smaller yaw).
    state.yaw = wrapDegrees(state.yaw - dx * DRAG_DEGREES_PER_PIXEL);
    state.pitch = clamp(state.pitch + dy * DRAG_DEGREES_PER_PIXEL, -89, 89);
    showValues();
    request(false);
  });
  const release = () => { if (drag) { drag = null; request(true); } };
  frame.addEventListener("pointerup", release);
  frame.addEventListener("pointercancel", release);
  frame.addEventListener("wheel", (event) => {
    event.preventDefault();
    const radius = $("radius");
    state.radius = clamp(state.radius * Math.exp(event.deltaY * 0.001), Number(radius.min), Number(radius.max));
    showValues();
    request(false);
  }, { passive: false });
}

// ------------------------------------------------------------------ exports
async function download(path, params, what) {
  const buttons = document.querySelectorAll("[id^=export-]");
  buttons.forEach((b) => { b.disabled = true; });
  setStatus(`exporting ${what}…`);
  try {
    const response = await fetch(`${path}?${params}`);
    if (!response.ok) { setStatus(`${what}: ${await errorText(response)}`, true); return; }
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "gan3d-export";
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(`saved ${name}`);
  } catch (error) {
    setStatus(`${what}: ${error.message || error}`, true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function bindExports() {
  $("export-png").addEventListener("click", () => download("/api/export/png", viewParams(true), "PNG"));
  $("export-video").addEventListener("click", () => {
    const p = latentParams();
    p.set("radius", String(round(state.radius)));
    p.set("fov", String(round(state.fov, 2)));
    p.set("mode", state.mode === "alpha" ? "image" : state.mode);  // the orbit video shows image, raw or depth
    p.set("frames", $("video-frames").value);
    download("/api/export/video", p, "MP4");
  });
  for (const format of ["ply", "obj"]) {
    $(`export-${format}`).addEventListener("click", () => {
      const p = latentParams();
      p.set("format", format);
      p.set("shape_res", $("shape-res").value);
      download("/api/export/mesh", p, format.toUpperCase());
    });
  }
}

// ------------------------------------------------------------------ start
async function start() {
  const response = await fetch("/api/info");
  if (!response.ok) { setStatus(await errorText(response), true); return; }
  info = await response.json();
  $("model-name").textContent =
    `${info.method}${info.variant ? ` (${info.variant})` : ""} · ${info.render_resolution} px · ${info.device}`;
  document.title = `gan3d viewer · ${info.method}`;
  const d = info.defaults;
  const radius = $("radius");
  radius.min = d.radius / 4; radius.max = d.radius * 4; radius.step = d.radius / 400;
  $("fov").min = Math.min(1, d.fov);
  $("fov").max = Math.max(120, d.fov);
  Object.assign(state, { seed: d.seed, psi: d.psi, mode: d.mode });
  resetView();

  bindSlider("yaw", "yaw");
  bindSlider("pitch", "pitch");
  bindSlider("radius", "radius");
  bindSlider("fov", "fov");
  bindSlider("psi", "psi");
  $("psi").addEventListener("change", async () => { await loadScene(); showValues(); });
  $("reset-view").addEventListener("click", () => { resetView(); showValues(); request(true); });
  $("seed").addEventListener("change", () => setSeed(Number($("seed").value)));
  $("seed-prev").addEventListener("click", () => setSeed(Math.max(0, state.seed - 1)));
  $("seed-next").addEventListener("click", () => setSeed(state.seed + 1));
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => { state.mode = radio.value; request(true); });
  }
  bindPointer();
  bindExports();
  if (info.objects) {
    buildObjectControls();
    await loadScene();
  }
  showValues();
  request(true);
}

start().catch((error) => setStatus(String(error.message || error), true));
