/* Start a booking from an empty calendar slot (issue 15).
 *
 * A time-grid column (.tg-col[data-pick-url]) opens the booking form in the drawer with the
 * day, the person and the start time under the pointer (15-minute rows); dragging down a
 * column starts at the top of the dragged stretch. A day cell of the Team week view
 * (td[data-pick-url]) opens the form for that person and day. Keyboard users have the
 * "New booking …" link at the top of each column, which opens the same form.
 * Without JavaScript nothing here runs, and the links still work.
 */
(function () {
  "use strict";
  var SLOT = 15;
  var drag = null;

  function rowAt(col, clientY) {
    var rows = parseInt(col.getAttribute("data-rows"), 10) || 1;
    var box = col.getBoundingClientRect();
    var row = Math.floor(((clientY - box.top) / box.height) * rows);
    return Math.max(0, Math.min(rows - 1, row));
  }

  function hhmm(col, row) {
    var minute = (parseInt(col.getAttribute("data-first-min"), 10) || 0) + row * SLOT;
    var h = Math.floor(minute / 60), m = minute % 60;
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }

  function open(url) {
    if (window.htmx && document.getElementById("drawer")) {
      window.htmx.ajax("GET", url, { target: "#drawer", swap: "innerHTML" });
    } else {
      window.location.href = url;
    }
  }

  function mark(col, from, to) {
    var el = col.querySelector(".tg-pick");
    if (!el) {
      el = document.createElement("li");
      el.className = "tg-pick";
      el.setAttribute("aria-hidden", "true");
      col.appendChild(el);
    }
    el.style.gridRow = Math.min(from, to) + 1 + " / " + (Math.max(from, to) + 2);
  }

  function clear() {
    document.querySelectorAll(".tg-pick").forEach(function (el) { el.remove(); });
  }

  document.addEventListener("pointerdown", function (evt) {
    var col = evt.target.closest && evt.target.closest(".tg-col[data-pick-url]");
    if (!col || evt.target !== col || evt.button !== 0) return; // items keep their own clicks
    drag = { col: col, from: rowAt(col, evt.clientY) };
    drag.to = drag.from;
    mark(col, drag.from, drag.to);
    evt.preventDefault();
  });

  document.addEventListener("pointermove", function (evt) {
    if (!drag) return;
    drag.to = rowAt(drag.col, evt.clientY);
    mark(drag.col, drag.from, drag.to);
  });

  document.addEventListener("pointerup", function () {
    if (!drag) return;
    var col = drag.col, start = hhmm(col, Math.min(drag.from, drag.to));
    drag = null;
    clear();
    open(col.getAttribute("data-pick-url") + "&start=" + encodeURIComponent(start));
  });

  document.addEventListener("click", function (evt) {
    var cell = evt.target.closest && evt.target.closest("td[data-pick-url]");
    if (!cell || evt.target !== cell) return;
    open(cell.getAttribute("data-pick-url"));
  });
})();
