// Episode editor: move, resize and aim the tail of a text element by dragging its handles.
// Positions are fractions of the panel; on release they go into the bubble's hidden inputs
// and a "bubble-moved" event makes htmx save them (hx-trigger on the bubble's form).
// The page carries no style attributes (CSP style-src 'self'): the stage's aspect ratio and
// each bubble's box, font size and tail come from data-* attributes and are set here through
// the CSSOM, which CSP allows. This file is not deferred, so the observer below sees the
// editor as it is parsed and lays it out before the first paint.
(function () {
  "use strict";
  var MIN = 0.05;

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function pct(v) { return (v * 100).toFixed(3) + "%"; }

  function read(bubble) {
    var d = bubble.dataset;
    return {
      x: +d.x, y: +d.y, w: +d.w, h: +d.h,
      tx: d.tailX === undefined ? null : +d.tailX,
      ty: d.tailY === undefined ? null : +d.tailY
    };
  }

  function show(bubble, s) {
    bubble.style.left = pct(s.x); bubble.style.top = pct(s.y);
    bubble.style.width = pct(s.w); bubble.style.height = pct(s.h);
    bubble.dataset.x = s.x; bubble.dataset.y = s.y; bubble.dataset.w = s.w; bubble.dataset.h = s.h;
    if (s.tx === null) return;
    bubble.dataset.tailX = s.tx; bubble.dataset.tailY = s.ty;
    // The tail is drawn in the bubble's own box (0..100 each way, may go outside it).
    var lx = (s.tx - s.x) / s.w * 100, ly = (s.ty - s.y) / s.h * 100;
    var line = bubble.querySelector(".ep-tail line");
    if (line) { line.setAttribute("x2", lx); line.setAttribute("y2", ly); }
    var handle = bubble.querySelector(".ep-tail-handle");
    if (handle) { handle.style.left = lx + "%"; handle.style.top = ly + "%"; }
  }

  function layout(el) {
    if (el.hasAttribute("data-bubble")) {
      show(el, read(el));
      if (el.dataset.fs) el.style.setProperty("--fs", el.dataset.fs);
    } else if (el.dataset.sliceTop !== undefined) {
      // A slice in the whole-strip preview: its place as a share of the strip.
      var total = +el.dataset.stripHeight || 1;
      el.style.top = (+el.dataset.sliceTop / total * 100) + "%";
      el.style.height = (+el.dataset.sliceHeight / total * 100) + "%";
    } else if (el.dataset.height) {
      el.style.aspectRatio = "800 / " + el.dataset.height;
    }
  }

  var LAID_OUT = "[data-bubble], [data-stage][data-height], [data-slice-top]";
  function layoutAdded(nodes) {
    var todo = new Set();
    nodes.forEach(function (node) {
      if (node.nodeType !== Node.ELEMENT_NODE) return;
      var owner = node.closest("[data-bubble]");  // a part of a bubble parsed after it
      if (owner) todo.add(owner);
      if (node.matches(LAID_OUT)) todo.add(node);
      node.querySelectorAll(LAID_OUT).forEach(function (el) { todo.add(el); });
    });
    todo.forEach(layout);
  }
  layoutAdded([document.documentElement]);
  new MutationObserver(function (records) {
    var added = [];
    records.forEach(function (r) { r.addedNodes.forEach(function (n) { added.push(n); }); });
    layoutAdded(added);
  }).observe(document.documentElement, { childList: true, subtree: true });

  function save(bubble, s) {
    var form = bubble.querySelector("form");
    var values = { x: s.x, y: s.y, w: s.w, h: s.h, tail_x: s.tx, tail_y: s.ty };
    Object.keys(values).forEach(function (name) {
      var input = form.querySelector("input[name=" + name + "]");
      if (input && values[name] !== null) input.value = values[name].toFixed(4);
    });
    htmx.trigger(form, "bubble-moved");
  }

  document.addEventListener("pointerdown", function (event) {
    var handle = event.target.closest("[data-drag]");
    if (!handle || event.button !== 0) return;
    var bubble = handle.closest("[data-bubble]");
    var stage = bubble && bubble.closest("[data-stage]");
    if (!stage) return;
    event.preventDefault();
    var mode = handle.dataset.drag;
    var box = stage.getBoundingClientRect();
    var start = read(bubble), x0 = event.clientX, y0 = event.clientY;
    var now = Object.assign({}, start);
    bubble.classList.add("dragging");
    handle.setPointerCapture(event.pointerId);

    function move(e) {
      var dx = (e.clientX - x0) / box.width, dy = (e.clientY - y0) / box.height;
      now = Object.assign({}, start);
      if (mode === "move") {
        now.x = clamp(start.x + dx, 0, 1 - start.w);
        now.y = clamp(start.y + dy, 0, 1 - start.h);
        if (start.tx !== null) {  // the tail keeps pointing at the same place
          now.tx = start.tx; now.ty = start.ty;
        }
      } else if (mode === "resize") {
        now.w = clamp(start.w + dx, MIN, 1 - start.x);
        now.h = clamp(start.h + dy, MIN, 1 - start.y);
      } else if (mode === "tail") {
        now.tx = clamp(start.tx + dx, 0, 1);
        now.ty = clamp(start.ty + dy, 0, 1);
      }
      show(bubble, now);
    }
    function up() {
      handle.removeEventListener("pointermove", move);
      bubble.classList.remove("dragging");
      if (now.x !== start.x || now.y !== start.y || now.w !== start.w || now.h !== start.h ||
          now.tx !== start.tx || now.ty !== start.ty) save(bubble, now);
    }
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up, { once: true });
    handle.addEventListener("pointercancel", up, { once: true });
  });

  // The export's platform: show its limits; a platform that takes only JPEG gets JPEG.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-limits-target]");
    if (!select) return;
    var option = select.selectedOptions[0];
    var line = document.querySelector(select.dataset.limitsTarget);
    if (line && option) line.querySelector("small").textContent = option.dataset.limits || "";
    var format = select.form && select.form.querySelector("select[name=format]");
    var formats = ((option && option.dataset.formats) || "png jpeg").split(" ");
    if (format) {
      Array.prototype.forEach.call(format.options, function (o) {
        o.disabled = formats.indexOf(o.value) < 0;
      });
      if (formats.indexOf(format.value) < 0) format.value = formats[0];
    }
  });

  // A new action clears the last refusal shown under the title.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var trigger = (event.detail.elt && event.detail.elt.getAttribute("hx-trigger")) || "";
    if (trigger.indexOf("every") === 0) return;  // polling is no new action
    var line = document.getElementById("editor-error");
    if (line) line.textContent = "";
  });
})();
