// cxrsearch UI: concept autocomplete, upload drag-and-drop, zoomable viewer, live job progress. No inline script (CSP).
"use strict";

function $(sel, root) { return (root || document).querySelector(sel); }
function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

// --- concept autocomplete on the search box (the last word(s) typed are completed) ---------------------
function setupAutocomplete() {
  const input = $("#q"), list = $("#suggestions");
  if (!input || !list) return;
  let items = [], active = -1, timer = null, lastPrefix = null, controller = null;

  function currentPrefix() {
    const text = input.value.slice(0, input.selectionStart || input.value.length);
    const words = text.split(/\s+/);
    return words[words.length - 1] || "";
  }
  function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; input.removeAttribute("aria-activedescendant"); }
  function render() {
    list.replaceChildren();
    items.forEach((s, i) => {
      const li = document.createElement("li");
      li.id = "sugg-" + i; li.setAttribute("role", "option"); li.setAttribute("aria-selected", i === active ? "true" : "false");
      const name = document.createElement("span"); name.textContent = s.text;
      const kind = document.createElement("span"); kind.className = "kind";
      kind.textContent = s.kind + (s.count ? " · " + s.count.toLocaleString() : "");
      li.append(name, kind);
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(i); });
      list.append(li);
    });
    const show = items.length > 0;
    list.hidden = !show; input.setAttribute("aria-expanded", show ? "true" : "false");
    if (active >= 0) input.setAttribute("aria-activedescendant", "sugg-" + active); else input.removeAttribute("aria-activedescendant");
  }
  function choose(i) {
    const s = items[i]; if (!s) return;
    const end = input.selectionStart || input.value.length;
    const before = input.value.slice(0, end), after = input.value.slice(end);
    const prefix = currentPrefix();
    // replace the typed word (and earlier words that are part of the suggestion, e.g. "upper lo" -> "upper lobe")
    let start = before.length - prefix.length;
    const lowerBefore = before.toLowerCase();
    for (let n = s.text.length; n > prefix.length; n--) {
      const head = s.text.slice(0, n);
      if (lowerBefore.endsWith(head) && (before.length === head.length || /\s/.test(before[before.length - head.length - 1]))) {
        start = before.length - head.length; break;
      }
    }
    input.value = before.slice(0, start) + s.text + " " + after.trimStart();
    const caret = start + s.text.length + 1; input.setSelectionRange(caret, caret);
    items = []; close(); input.focus();
  }
  async function fetchSuggestions() {
    const text = input.value.slice(0, input.selectionStart || input.value.length);
    const words = text.trim().split(/\s+/).slice(-2);
    const prefix = currentPrefix();
    if (prefix.length < 2) { items = []; close(); return; }
    const key = words.join(" ");
    if (key === lastPrefix) return;
    lastPrefix = key;
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const url = input.dataset.suggestUrl + "?limit=8&prefix=" + encodeURIComponent(prefix);
      const twoWords = words.length > 1 ? input.dataset.suggestUrl + "?limit=4&prefix=" + encodeURIComponent(key) : null;
      const [one, two] = await Promise.all([url, twoWords].map((u) => u ? fetch(u, {signal: controller.signal}).then((r) => r.ok ? r.json() : {suggestions: []}) : {suggestions: []}));
      const seen = new Set(); items = [];
      for (const s of [...two.suggestions, ...one.suggestions]) { if (!seen.has(s.text)) { seen.add(s.text); items.push(s); } }
      items = items.slice(0, 8); active = -1; render();
    } catch (e) { if (e.name !== "AbortError") { items = []; close(); } }
  }
  input.addEventListener("input", () => { clearTimeout(timer); lastPrefix = null; timer = setTimeout(fetchSuggestions, 120); });
  input.addEventListener("keydown", (e) => {
    if (list.hidden) return;
    if (e.key === "ArrowDown") { active = (active + 1) % items.length; render(); e.preventDefault(); }
    else if (e.key === "ArrowUp") { active = (active - 1 + items.length) % items.length; render(); e.preventDefault(); }
    else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) { choose(active); e.preventDefault(); }
    else if (e.key === "Escape") { close(); e.preventDefault(); }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

// --- source switch: a click searches again at once ------------------------------------------------------
function setupSourceSwitch() {
  const form = $("#search-form");
  if (!form) return;
  $all('input[name="source"]', form).forEach((radio) => radio.addEventListener("change", () => {
    if ($("#q").value.trim() || $all('input[name="filter"]', form).length) form.requestSubmit();
  }));
}

// --- upload: drag and drop onto the drop zone, submit on choose ------------------------------------------
function setupUpload() {
  $all(".upload").forEach((form) => {
    const zone = $(".dropzone", form), input = $('input[type="file"]', form);
    if (!zone || !input) return;
    ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("dragover"); }));
    ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("dragover"); }));
    zone.addEventListener("drop", (e) => {
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      form.requestSubmit();
    });
    input.addEventListener("change", () => { if (input.files.length) form.requestSubmit(); });
  });
}

// --- zoomable viewer: wheel / buttons / keys zoom, drag or arrows pan ------------------------------------
function setupViewer() {
  const viewer = $("#viewer");
  if (!viewer) return;
  const layers = $all("img", viewer);
  let scale = 1, x = 0, y = 0, drag = null;
  function apply() {
    const w = viewer.clientWidth, h = viewer.clientHeight;
    x = Math.min(0, Math.max(w - w * scale, x)); y = Math.min(0, Math.max(h - h * scale, y));
    layers.forEach((img) => { img.style.transform = `translate(${x}px, ${y}px) scale(${scale})`; });
  }
  function zoom(factor, cx, cy) {
    const w = viewer.clientWidth, h = viewer.clientHeight;
    cx = cx === undefined ? w / 2 : cx; cy = cy === undefined ? h / 2 : cy;
    const next = Math.min(8, Math.max(1, scale * factor));
    x = cx - (cx - x) * (next / scale); y = cy - (cy - y) * (next / scale); scale = next; apply();
  }
  function reset() { scale = 1; x = 0; y = 0; apply(); }
  viewer.addEventListener("wheel", (e) => { e.preventDefault(); const r = viewer.getBoundingClientRect(); zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - r.left, e.clientY - r.top); }, {passive: false});
  viewer.addEventListener("pointerdown", (e) => { drag = {px: e.clientX, py: e.clientY, x, y}; viewer.setPointerCapture(e.pointerId); viewer.classList.add("dragging"); });
  viewer.addEventListener("pointermove", (e) => { if (!drag) return; x = drag.x + e.clientX - drag.px; y = drag.y + e.clientY - drag.py; apply(); });
  viewer.addEventListener("pointerup", () => { drag = null; viewer.classList.remove("dragging"); });
  viewer.addEventListener("dblclick", (e) => { const r = viewer.getBoundingClientRect(); scale > 1 ? reset() : zoom(2.5, e.clientX - r.left, e.clientY - r.top); });
  viewer.addEventListener("keydown", (e) => {
    const step = 40;
    const keys = {"+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8), "0": reset,
      ArrowLeft: () => { x += step; apply(); }, ArrowRight: () => { x -= step; apply(); },
      ArrowUp: () => { y += step; apply(); }, ArrowDown: () => { y -= step; apply(); }};
    if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
  });
  $all("[data-zoom]").forEach((b) => b.addEventListener("click", () => {
    const z = b.dataset.zoom; if (z === "in") zoom(1.25); else if (z === "out") zoom(0.8); else reset();
  }));
  $all("[data-invert]").forEach((b) => b.addEventListener("click", () => {
    const on = viewer.classList.toggle("inverted"); b.setAttribute("aria-pressed", on ? "true" : "false");
  }));
  const overlayBtn = $("#toggle-overlay"), overlay = $("#viewer-overlay");
  if (overlayBtn && overlay) overlayBtn.addEventListener("click", () => {
    overlay.hidden = !overlay.hidden; overlayBtn.setAttribute("aria-pressed", overlay.hidden ? "false" : "true");
  });
  overlay && overlay.addEventListener("error", () => { overlay.remove(); overlayBtn && overlayBtn.remove(); });
  window.addEventListener("resize", apply);
}

// --- "Back to results": the browser's back when we came from a search on this site -----------------------
function setupBackLink() {
  const link = $("#back-link");
  if (!link) return;
  try {
    const ref = document.referrer ? new URL(document.referrer) : null;
    if (ref && ref.origin === location.origin && (ref.pathname === "/" || ref.pathname === "/search")) {
      link.href = ref.pathname + ref.search;
    }
  } catch (e) { /* keep the plain link */ }
}

// --- admin: watch running jobs live ----------------------------------------------------------------------
function setupJobs() {
  const rows = $all("#jobs tr[data-job-id]").filter((r) => ["queued", "running"].includes(r.dataset.state));
  rows.forEach((row) => {
    const timer = setInterval(async () => {
      let job;
      try { const r = await fetch(row.dataset.statusUrl, {credentials: "same-origin"}); if (!r.ok) return; job = await r.json(); }
      catch (e) { return; }
      const p = job.progress || {};
      const bar = $("progress", row); bar.max = p.total || 1; bar.value = p.done || 0;
      $(".job-progress span", row).textContent = `${p.done || 0}/${p.total || "?"} ${p.phase || ""}` + (p.rate ? ` · ${p.rate}/s` : "");
      const state = $(".state", row); state.textContent = job.state; state.className = "state s-" + job.state;
      row.dataset.state = job.state;
      if (!["queued", "running"].includes(job.state)) {
        clearInterval(timer);
        const s = job.summary;
        $(".job-result", row).textContent = s ? `${s.indexed} indexed, ${s.unchanged} unchanged` +
          (s.nothing_changed ? ": nothing changed, live version kept" : s.live_version ? `, live ${s.live_version}` : "") : (job.error || "");
      }
    }, 1000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupAutocomplete(); setupSourceSwitch(); setupUpload(); setupViewer(); setupBackLink(); setupJobs();
});
