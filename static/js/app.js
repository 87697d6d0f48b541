// Small page behaviours that need no server round trip.
(function () {
  "use strict";
  // Step 4: click a cut to see it large.
  document.addEventListener("click", function (event) {
    var img = event.target.closest("img[data-zoom]");
    var dialog = document.getElementById("zoom");
    if (!img || !dialog) return;
    document.getElementById("zoom-image").src = img.dataset.zoom;
    document.getElementById("zoom-caption").textContent = img.dataset.caption || "";
    dialog.showModal();
  });
  // [취소] in an inline confirmation removes it.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) button.closest(button.dataset.dismiss).remove();
  });
  // The LoRA strength slider shows its value next to it.
  document.addEventListener("input", function (event) {
    var out = event.target.dataset.output && document.getElementById(event.target.dataset.output);
    if (out) out.textContent = Number(event.target.value).toFixed(2);
  });
  // Scene page: picking a character moves the slider to its default strength;
  // "+ 새 캐릭터 학습" goes to the new-character wizard.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-scale-target]");
    if (!select) return;
    var option = select.selectedOptions[0];
    if (option && option.dataset.href) { window.location = option.dataset.href; return; }
    var slider = document.getElementById(select.dataset.scaleTarget);
    if (slider && option && option.dataset.scale) {
      slider.value = option.dataset.scale;
      slider.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });
  // Phone: the ☰ button opens and closes the menu (the links never squeeze into one line).
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".menu-toggle");
    if (!toggle) return;
    var open = toggle.closest(".topbar").classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
  // Empty states follow the list without a reload: <p data-empty-for="#list"
  // data-empty-item="selector" hidden> shows when the last item is gone (or hides when one
  // arrives), whatever removed or added it.
  function syncEmptyStates() {
    document.querySelectorAll("[data-empty-for]").forEach(function (note) {
      var list = document.querySelector(note.dataset.emptyFor);
      var empty = !list || !list.querySelector(note.dataset.emptyItem);
      if (note.hidden === empty) note.hidden = !empty;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    syncEmptyStates();
    new MutationObserver(syncEmptyStates).observe(document.body, { childList: true, subtree: true });
  });
  // Two-character scene: the scale-sum warning and its confirmation appear next to the
  // sliders before anything is paid; the same character twice is refused next to the button.
  function checkPair(form) {
    var box = form.querySelector(".scale-pair");
    if (box) {
      var sum = 0;
      form.querySelectorAll("input[data-sum]").forEach(function (input) { sum += Number(input.value); });
      var over = sum > Number(box.dataset.maxSum) + 1e-9;
      var warning = form.querySelector(".scale-sum-warning");
      warning.hidden = !over;
      if (!over) warning.querySelector("input[type=checkbox]").checked = false;
    }
    var picks = Array.prototype.map.call(form.querySelectorAll("select[data-pair]"), function (s) { return s.value; });
    var enough = form.dataset.enough !== "0";
    var same = enough && picks.length === 2 && picks[0] && picks[0] === picks[1];
    var note = form.querySelector(".same-twice");
    if (note) note.hidden = !same;
    var submit = form.querySelector("[data-testid=scene-two-submit]");
    if (submit && enough) submit.disabled = same;
  }
  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form[data-testid=scene-two]");
    if (form) checkPair(form);
  });
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-testid=scene-two]");
    if (form) checkPair(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-testid=scene-two]").forEach(checkPair);
  });
  // Style step: the price shown follows the chosen style (each style is a different model).
  document.addEventListener("change", function (event) {
    var radio = event.target.closest("input[name=style_id][data-price]");
    if (!radio) return;
    radio.form.querySelectorAll("[data-chosen-price]").forEach(function (span) {
      span.textContent = radio.dataset.price;
    });
  });
  // Scene forms: the price on the button follows the size, the method and the characters
  // (auto: LoRA when every chosen character is trained, else the reference picture).
  function scenePrice(form) {
    var table = JSON.parse(form.dataset.prices);
    var size = form.querySelector("select[name=image_size]");
    var row = table[size ? size.value : Object.keys(table)[0]];
    if (!row) return;
    var chosen = form.querySelector("input[name=method]:checked");
    var method = chosen && chosen.value;
    if (!method) {
      var picked = form.querySelectorAll("select[name^=character] option:checked[data-method]");
      method = picked.length ? "lora" : "";
      picked.forEach(function (option) {
        if (option.dataset.method === "reference") method = "reference";
      });
      method = method || "lora"; // prompt mode: the plain model, priced like the LoRA pass
    }
    var separate = form.querySelector("input[name=separate_identities]");
    var price = method === "lora" && separate && !separate.checked ? row.lora_single : row[method];
    form.querySelectorAll("[data-chosen-price]").forEach(function (span) {
      span.textContent = price;
    });
    form.querySelectorAll("[data-method-price]").forEach(function (span) {
      span.textContent = row[span.dataset.methodPrice];
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-prices]");
    if (form) scenePrice(form);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-prices]").forEach(scenePrice);
  });
  // A click on the backdrop closes the zoom dialog too.
  document.addEventListener("click", function (event) {
    if (event.target.id === "zoom") event.target.close();
  });
})();
