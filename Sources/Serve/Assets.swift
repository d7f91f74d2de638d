/// The page's only script and style, served by lab itself: nothing is
/// fetched from the internet, and the pages work without the script.
enum Assets {
    static let files: [String: (type: String, body: String)] = [
        "lab.js": ("text/javascript; charset=utf-8", script),
        "lab.css": ("text/css; charset=utf-8", style),
    ]

    static let script = #"""
    "use strict";
    // Sorting (click a heading), filtering and live updates. The server
    // renders every table; this only reorders rows and swaps in fresher ones.
    (function () {
      const POLL_MS = 2000;

      function sortKey(td) {
        const s = td.getAttribute("data-sort");
        if (s !== null && s !== "") return { n: parseFloat(s) };
        const t = td.textContent.trim();
        return t === "-" ? { missing: true } : { t: t.toLowerCase() };
      }

      function compare(a, b) {
        if (a.missing || b.missing) return (a.missing ? 1 : 0) - (b.missing ? 1 : 0);
        if (a.n !== undefined && b.n !== undefined) return a.n - b.n;
        return String(a.t ?? a.n).localeCompare(String(b.t ?? b.n), undefined, { numeric: true });
      }

      function sortTable(table) {
        const col = parseInt(table.dataset.sortCol, 10);
        if (isNaN(col)) return;
        const dir = table.dataset.sortDir === "desc" ? -1 : 1;
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort((x, y) => {
          const a = sortKey(x.cells[col]), b = sortKey(y.cells[col]);
          return a.missing || b.missing ? compare(a, b) : dir * compare(a, b);
        });
        rows.forEach((r) => body.appendChild(r));
        Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
          th.setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
        });
      }

      // "#runs=-6": the runs table sorted by its 7th column, descending; a
      // sorted view survives a reload and can be shared as a link.
      function sortFromHash(table) {
        const m = location.hash.match(/^#([a-z]+)=(-?)(\d+)$/);
        if (!m || m[1] !== table.id) return;
        table.dataset.sortCol = m[3];
        table.dataset.sortDir = m[2] ? "desc" : "asc";
        sortTable(table);
      }

      function makeSortable(table) {
        Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
          th.addEventListener("click", () => {
            const same = table.dataset.sortCol === String(i);
            table.dataset.sortDir = same && table.dataset.sortDir !== "desc" ? "desc" : "asc";
            table.dataset.sortCol = String(i);
            sortTable(table);
            if (table.id) history.replaceState(null, "", "#" + table.id + "=" + (table.dataset.sortDir === "desc" ? "-" : "") + i);
          });
        });
      }

      function applyFilter(table, input) {
        const terms = input.value.toLowerCase().split(/\s+/).filter((t) => t);
        Array.from(table.tBodies[0].rows).forEach((r) => {
          const text = Array.from(r.cells, (c) => c.textContent.trim()).join(" ").toLowerCase();
          r.hidden = !terms.every((t) => text.includes(t));
        });
      }

      function cellNode(cell, numeric) {
        const td = document.createElement("td");
        if (numeric) td.className = "num";
        if (cell.sort !== undefined && cell.sort !== null) td.setAttribute("data-sort", String(cell.sort));
        if (cell.href) {
          const a = document.createElement("a");
          a.href = cell.href;
          a.textContent = cell.text;
          td.appendChild(a);
        } else {
          td.textContent = cell.text;
        }
        if (cell.progress !== undefined && cell.progress !== null) {
          const p = document.createElement("progress");
          p.max = 1;
          p.value = cell.progress;
          td.append(" ", p);
        }
        return td;
      }

      function replaceRows(table, runs) {
        const numeric = Array.from(table.tHead.rows[0].cells).map((th) => th.classList.contains("num"));
        const body = document.createElement("tbody");
        runs.forEach((run) => {
          const tr = document.createElement("tr");
          tr.className = "status-" + run.status;
          tr.dataset.run = run.id;
          run.cells.forEach((c, i) => tr.appendChild(cellNode(c, numeric[i])));
          body.appendChild(tr);
        });
        table.replaceChild(body, table.tBodies[0]);
      }

      function every(ms, step) {
        const tick = () => step().then((again) => { if (again !== false) setTimeout(tick, ms); },
                                        () => setTimeout(tick, ms * 3));
        setTimeout(tick, ms);
      }

      function liveRuns(table, filter) {
        const summary = document.getElementById("summary-count");
        every(POLL_MS, async () => {
          const r = await fetch(table.dataset.live, { cache: "no-store" });
          if (!r.ok) return true;
          const data = await r.json();
          replaceRows(table, data.runs);
          if (summary) summary.textContent = data.summary;
          sortTable(table);
          if (filter) applyFilter(table, filter);
          return true;
        });
      }

      async function refreshFigures(box) {
        for (const fig of box.querySelectorAll("figure[data-src]")) {
          const r = await fetch(fig.dataset.src, { cache: "no-store" });
          if (r.ok) fig.innerHTML = await r.text();
        }
      }

      function liveCurves(box) {
        every(POLL_MS, async () => {
          const r = await fetch(box.dataset.live, { cache: "no-store" });
          if (!r.ok) return true;
          const data = await r.json();
          const status = document.getElementById("status");
          if (status) { status.textContent = data.status; status.className = "status-" + data.status; }
          const count = document.getElementById("epochs");
          if (count) count.textContent = String(data.epochs.length);
          if (String(data.epochs.length) !== box.dataset.epochs) {
            box.dataset.epochs = String(data.epochs.length);
            await refreshFigures(box);
          }
          return data.status === "running";
        });
      }

      document.addEventListener("DOMContentLoaded", () => {
        const filter = document.getElementById("filter");
        document.querySelectorAll("table.sortable").forEach((t) => { makeSortable(t); sortFromHash(t); });
        document.querySelectorAll("table[data-live]").forEach((t) => liveRuns(t, filter));
        if (filter) {
          const table = document.getElementById("runs");
          filter.addEventListener("input", () => applyFilter(table, filter));
          filter.form.addEventListener("submit", (e) => e.preventDefault());
        }
        document.querySelectorAll("#curves[data-live]").forEach(liveCurves);
      });
    })();
    """#

    static let style = """
    body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
    nav { background: #263238; padding: 8px 16px; }
    nav a { color: #fff; margin-right: 16px; text-decoration: none; font-weight: 600; }
    main { padding: 8px 16px 32px; }
    h1 small { color: #666; font-weight: normal; }
    .wide { overflow-x: auto; }
    table { border-collapse: collapse; margin: 8px 0 16px; }
    th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
    th { background: #f3f5f7; }
    table.sortable th { cursor: pointer; }
    th[aria-sort=ascending]::after { content: " \\25B2"; }
    th[aria-sort=descending]::after { content: " \\25BC"; }
    .num { text-align: right; font-variant-numeric: tabular-nums; }
    tr.status-running td, .status-running { color: #1565c0; font-weight: 600; }
    tr.status-failed td, .status-failed { color: #b71c1c; }
    tr.status-interrupted td, .status-interrupted { color: #8d6e00; }
    progress { width: 60px; height: 10px; vertical-align: middle; }
    .summary { color: #555; }
    .figures { display: flex; flex-wrap: wrap; gap: 12px; }
    figure { margin: 0; }
    pre { background: #f6f8fa; padding: 8px; max-width: 900px; overflow: auto; }
    dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
    dt { color: #555; }
    dd { margin: 0; font-family: monospace; }
    .picker label { margin-right: 10px; white-space: nowrap; }
    #errors img { image-rendering: pixelated; }
    """
}
