/* Copy buttons: <button data-copy="input-id" hidden> copies that input's value, and
 * <p data-copy-status="input-id" aria-live="polite"> says whether it worked. The buttons stay
 * hidden without JavaScript (the address can still be selected and copied by hand). Loaded by
 * the fragments that need it, possibly more than once: it binds a single listener. */
(function () {
  "use strict";
  if (window.slotbookCopyButtons) {
    reveal();
    return;
  }
  window.slotbookCopyButtons = true;

  function reveal() {
    document.querySelectorAll("button[data-copy][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function say(id, text) {
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (status) {
      status.textContent = text;
    }
  }

  function fallbackCopy(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) {
      return;
    }
    var id = button.getAttribute("data-copy");
    var input = document.getElementById(id);
    if (!input) {
      return;
    }
    var done = function () { say(id, "Copied to the clipboard."); };
    var failed = function () {
      input.focus();
      input.select();
      say(id, "Could not copy: the address is selected, press Ctrl+C (⌘C on a Mac).");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        if (fallbackCopy(input)) { done(); } else { failed(); }
      });
    } else if (fallbackCopy(input)) {
      done();
    } else {
      failed();
    }
  });

  document.addEventListener("htmx:afterSettle", reveal);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reveal);
  } else {
    reveal();
  }
})();
