// The catalog's search box: as you type, rows whose data-search text holds every word
// typed stay; the others hide. Without JavaScript the page lists everything.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("search");
  if (!box) return;
  const items = Array.from(document.querySelectorAll("[data-search]"));
  const count = document.getElementById("search-count");
  const filter = () => {
    const words = box.value.toLowerCase().split(/\s+/).filter((w) => w.length > 0);
    let shown = 0;
    for (const item of items) {
      const text = item.getAttribute("data-search") || "";
      const hit = words.every((w) => text.includes(w));
      item.hidden = !hit;
      if (hit) shown += 1;
    }
    if (count) count.textContent = words.length > 0 ? `${shown} of ${items.length} shown` : "";
  };
  box.addEventListener("input", filter);
  filter();
});
