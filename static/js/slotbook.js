/* Slotbook: the little behaviour HTMX does not give us. Plain JavaScript, no dependencies.
 *
 * - The side drawer (#drawer): focus moves into it when it opens or its content is replaced,
 *   and back to what opened it when it closes (close button or Escape).
 * - Answers a drawer or booking panel should show even when they are errors (400, 403, 404,
 *   409, 422 carry a readable message) are swapped in instead of being dropped.
 * - Quick picks in the booking form's preview fill the time field.
 * - "Select all" checkboxes.
 */
(function () {
  "use strict";

  var SHOWN_ERRORS = [400, 403, 404, 409, 422];
  var state = { open: false, opener: null, openerUrl: null };

  function drawer() {
    return document.getElementById("drawer");
  }

  function hasContent(el) {
    return !!el && el.children.length > 0;
  }

  function focusInto(el) {
    var target = el.querySelector("[data-autofocus]") || el.querySelector("h1, h2");
    if (!target) {
      target = el;
    }
    if (!target.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus();
    if (target.id && el.getAttribute("role") === "dialog") {
      el.setAttribute("aria-labelledby", target.id);
    }
  }

  function sync() {
    var el = drawer();
    if (!el) {
      return;
    }
    var open = hasContent(el);
    var wasOpen = state.open;
    state.open = open;
    el.classList.toggle("is-open", open);
    document.body.classList.toggle("drawer-open", open);
    if (!open) {
      return;
    }
    if (!el.querySelector("[data-drawer-close]")) {
      // An answer without its own close button (an error page's fragment): give it one.
      var button = document.createElement("button");
      button.type = "button";
      button.className = "drawer-close drawer-close-added";
      button.setAttribute("data-drawer-close", "");
      button.setAttribute("aria-label", "Close");
      button.textContent = "\u00d7";
      el.prepend(button);
    }
    // Opening, or the content was replaced and took the focused element with it.
    if (!wasOpen || !el.contains(document.activeElement)) {
      focusInto(el);
    }
  }

  function restoreFocus() {
    var back = state.opener;
    if (!back || !document.body.contains(back)) {
      // The opener was re-rendered (the calendar refreshed): find its successor by URL.
      back = state.openerUrl ? document.querySelector('[hx-get="' + state.openerUrl + '"]') : null;
    }
    if (back) {
      back.focus();
    } else {
      var main = document.getElementById("main");
      if (main) {
        main.focus();
      }
    }
    state.opener = null;
    state.openerUrl = null;
  }

  function close() {
    var el = drawer();
    if (el) {
      el.replaceChildren();
      el.classList.remove("is-open");
      el.removeAttribute("aria-labelledby");
    }
    document.body.classList.remove("drawer-open");
    var wasOpen = state.open;
    state.open = false;
    if (wasOpen) {
      restoreFocus();
    }
  }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var el = drawer();
    var target = evt.detail.target;
    if (el && target === el && !state.open) {
      var from = evt.detail.elt;
      state.opener = from && from !== el && !el.contains(from) ? from : document.activeElement;
      state.openerUrl = from && from.getAttribute ? from.getAttribute("hx-get") : null;
    }
  });

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var status = evt.detail.xhr.status;
    var target = evt.detail.target;
    if (
      SHOWN_ERRORS.indexOf(status) !== -1 &&
      target && target.closest && target.closest("#drawer, [data-swap-errors]")
    ) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSettle", sync);

  document.addEventListener("click", function (evt) {
    var closer = evt.target.closest("[data-drawer-close]");
    if (closer && drawer() && drawer().contains(closer)) {
      evt.preventDefault();
      close();
      return;
    }
    var pick = evt.target.closest("[data-fill-time]");
    if (pick) {
      fillTime(pick);
    }
  });

  document.addEventListener("keydown", function (evt) {
    // The calendar's own drawer may already have emptied itself on this keydown.
    if (evt.key === "Escape" && (state.open || hasContent(drawer()))) {
      evt.preventDefault();
      close();
    }
  });

  function fillTime(pick) {
    var form = pick.closest("form");
    if (!form) {
      return;
    }
    var day = form.querySelector('input[name="day"]');
    var start = form.querySelector('input[name="start"]');
    if (day && pick.dataset.fillDay) {
      day.value = pick.dataset.fillDay;
    }
    if (start) {
      start.value = pick.dataset.fillTime;
      start.dispatchEvent(new Event("change", { bubbles: true }));
      start.focus();
    }
  }

  document.addEventListener("change", function (evt) {
    var all = evt.target.closest && evt.target.closest("[data-select-all]");
    if (!all) {
      return;
    }
    var scope = all.closest("form") || document;
    var boxes = scope.querySelectorAll('input[type="checkbox"][name="' + all.dataset.selectAll + '"]');
    for (var i = 0; i < boxes.length; i++) {
      boxes[i].checked = all.checked;
    }
  });
})();

/* The staff menu on a phone ([13]): at most 760 px wide the navigation folds behind a "Menu"
 * button (aria-expanded, Enter/Space as any button, Escape closes it and returns focus). The
 * header is never swapped by HTMX, and the listeners sit on the document, so swaps cannot
 * unbind them. Without script the button stays hidden and the menu shows open. */
(function () {
  "use strict";

  function parts() {
    var button = document.querySelector("[data-menu-toggle]");
    if (!button) {
      return null;
    }
    return { button: button, bar: button.closest(".topbar") };
  }

  function setOpen(open) {
    var p = parts();
    if (!p) {
      return;
    }
    p.button.setAttribute("aria-expanded", open ? "true" : "false");
    p.bar.classList.toggle("menu-open", open);
  }

  function init() {
    var p = parts();
    if (!p) {
      return;
    }
    p.button.hidden = false;
    document.documentElement.classList.add("js-menu");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-menu-toggle]");
    if (button) {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    }
  });
  document.addEventListener("keydown", function (event) {
    var p = parts();
    if (event.key === "Escape" && p && p.button.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      p.button.focus();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
