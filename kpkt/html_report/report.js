// report.html: choosing a step, its path on the picture, its sequence diagram and the hop
// details (inlined by kpkt/html_report/page.py; the run's data is the JSON in #run-data).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const MAX_HOPS = data.maxHops;
  const picture = document.getElementById("cluster");
  const overlay = document.getElementById("overlay"); // under the ports: the step's arrows
  const marks = document.getElementById("marks"); // over them: its drops
  const chooser = document.getElementById("step");
  const sequence = document.getElementById("sequence");
  const details = document.getElementById("hop");
  const portElement = new Map();
  picture.querySelectorAll(".port").forEach((el) => portElement.set(el.dataset.name, el));
  let shown = null; // the step on display

  function node(tag, attributes, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes || {})) el.setAttribute(key, value);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function micros(tNs) {
    return (tNs / 1000).toFixed(3) + " us";
  }

  // where a port is drawn: its centre, or its node's folded pods when they are folded away
  function centre(name) {
    const el = portElement.get(name);
    const folded = el.closest(".pods.folded");
    const source = folded || el;
    return [Number(source.dataset.x), Number(source.dataset.y)];
  }

  // where the line from a port's centre towards (x, y) leaves its box (its centre when folded)
  function edge(name, x, y) {
    const [cx, cy] = centre(name);
    const el = portElement.get(name);
    if (el.closest(".pods.folded")) return [cx, cy];
    const rect = el.querySelector("rect");
    const halfWidth = Number(rect.getAttribute("width")) / 2;
    const halfHeight = Number(rect.getAttribute("height")) / 2;
    const dx = x - cx, dy = y - cy;
    const t = Math.min(dx ? halfWidth / Math.abs(dx) : Infinity, dy ? halfHeight / Math.abs(dy) : Infinity);
    return t >= 1 ? [cx, cy] : [cx + dx * t, cy + dy * t];
  }

  // the moves of a step's packets from one port to the next, each pair of ports once, in the
  // order of their first hop; and each packet's last port
  function path(step) {
    const moves = [];
    const seen = new Set();
    const last = new Map();
    step.hops.forEach((hop, number) => {
      const port = data.ports[hop[0]].name;
      last.set(hop[3], port);
      if (hop[7] < 0) return;
      const before = data.ports[step.hops[hop[7]][0]].name;
      const key = before + "\n" + port;
      if (before !== port && !seen.has(key)) {
        seen.add(key);
        moves.push({ from: before, to: port, hop: number });
      }
    });
    return { moves, last };
  }

  function drawPath(step, current) {
    clear(overlay);
    clear(marks);
    picture.querySelectorAll(".hit, .dropped, .current").forEach((el) => {
      el.classList.remove("hit", "dropped", "current");
    });
    const { moves, last } = path(step);
    const hop = current === undefined ? undefined : step.hops[current];
    const currentMove = hop && hop[7] >= 0
      ? data.ports[step.hops[hop[7]][0]].name + "\n" + data.ports[hop[0]].name
      : null;
    step.hops.forEach((hop) => portElement.get(data.ports[hop[0]].name).classList.add("hit"));
    for (const move of moves) {
      const [cx1, cy1] = centre(move.from);
      const [cx2, cy2] = centre(move.to);
      const bend = 18;
      const mx = (cx1 + cx2) / 2 + (cy2 - cy1 === 0 ? 0 : bend);
      const my = (cy1 + cy2) / 2 - (cx2 - cx1 === 0 ? 0 : bend);
      const [x1, y1] = edge(move.from, mx, my);
      const [x2, y2] = edge(move.to, mx, my);
      const arrow = node("path", {
        class: "arrow",
        d: `M${x1},${y1} Q${mx},${my} ${x2},${y2}`,
        "data-from": move.from,
        "data-to": move.to,
        "data-hop": move.hop + 1,
      });
      arrow.appendChild(node("title", {}, `hop ${move.hop + 1}: ${move.from} -> ${move.to}`));
      if (move.from + "\n" + move.to === currentMove) arrow.classList.add("current");
      overlay.appendChild(arrow);
      picture.querySelectorAll(".link").forEach((link) => {
        const ends = [link.dataset.a, link.dataset.b];
        if (ends.includes(move.from) && ends.includes(move.to)) link.classList.add("hit");
      });
    }
    for (const drop of step.drops) {
      const place = dropPlace(drop, last);
      if (place.element) place.element.classList.add("dropped");
      if (place.port) {
        const [x, y] = centre(place.port);
        const mark = node("text", { class: "drop-mark", x: x + 48, y: y + 7, "data-where": drop[1] }, "✖");
        mark.appendChild(node("title", {}, `drop at ${drop[1]}: ${drop[2]}: ${drop[3]}`));
        marks.appendChild(mark);
      }
    }
    if (current !== undefined) {
      portElement.get(data.ports[step.hops[current][0]].name).classList.add("current");
    }
  }

  // a drop is at a capture point, or at a namespace (its owner): then at the packet's last hop
  function dropPlace(drop, last) {
    const where = drop[1];
    if (portElement.has(where)) return { port: where, element: portElement.get(where) };
    const box = picture.querySelector(`rect[data-node="${CSS.escape(where)}"], rect[data-owner="${CSS.escape(where)}"]`);
    return { port: last.get(drop[4]), element: box };
  }

  const ROW = 34, COLUMN = 76, LEFT = 96, HEAD = 110;

  function drawSequence(step) {
    clear(sequence);
    const columns = [];
    const columnOf = new Map();
    const { last } = path(step);
    const use = (name) => {
      if (name !== undefined && !columnOf.has(name)) {
        columnOf.set(name, columns.length);
        columns.push(name);
      }
      return columnOf.get(name);
    };
    step.hops.forEach((hop) => use(data.ports[hop[0]].name));
    const drops = step.drops.map((drop) => ({ drop, column: use(dropPlace(drop, last).port || drop[1]) }));
    const rows = step.hops.map((hop, number) => ({ hop, number, t: hop[4] }));
    for (const entry of drops) rows.push({ drop: entry.drop, column: entry.column, t: entry.drop[0] });
    rows.sort((a, b) => a.t - b.t || (a.drop ? 1 : 0) - (b.drop ? 1 : 0) || (a.number || 0) - (b.number || 0));
    const textX = LEFT + COLUMN * columns.length; // the labels may run on to here and beyond
    const height = HEAD + ROW * rows.length + 10;
    const svg = node("svg", { width: textX + 900, height, id: "sequence-svg" });
    const defs = node("defs");
    const head = node("marker", { id: "seq-head", markerWidth: 8, markerHeight: 8, refX: 7, refY: 4, orient: "auto" });
    head.appendChild(node("path", { d: "M0,0 L8,4 L0,8 z", fill: "#344767" }));
    defs.appendChild(head);
    svg.appendChild(defs);
    columns.forEach((name, i) => {
      const x = LEFT + COLUMN * i + COLUMN / 2;
      svg.appendChild(node("line", { class: "lifeline", x1: x, y1: HEAD - 4, x2: x, y2: height }));
      svg.appendChild(node("text", { class: "column", x, y: HEAD - 8, transform: `rotate(-30 ${x} ${HEAD - 8})`, "data-port": name }, name));
    });
    svg.appendChild(node("text", { class: "column", x: 4, y: HEAD - 8 }, "virtual time"));
    rows.forEach((row, i) => {
      const y = HEAD + ROW * i + ROW / 2;
      if (row.drop) {
        const [, where, reason, detail] = row.drop;
        const g = node("g", { class: "drop", "data-where": where, "data-column": columns[row.column] });
        const x = LEFT + COLUMN * row.column + COLUMN / 2;
        g.appendChild(node("text", { x: 4, y: y + 10 }, micros(row.t)));
        g.appendChild(node("text", { class: "cross", x: x - 5, y: y + 11 }, "✖"));
        g.appendChild(node("text", { class: "label", x: x + 10, y: y + 10 }, `drop at ${where}: ${reason}: ${detail}`));
        svg.appendChild(g);
        return;
      }
      const hop = row.hop;
      const port = data.ports[hop[0]].name;
      const column = columnOf.get(port);
      const g = node("g", { class: "row hop-row", "data-hop": row.number, "data-port": port });
      g.appendChild(node("rect", { class: "band", x: 0, y: y - ROW / 2, width: textX + 900, height: ROW }));
      g.appendChild(node("text", { x: 4, y: y + 10 }, micros(hop[4])));
      const x = LEFT + COLUMN * column + COLUMN / 2;
      const before = hop[7] < 0 ? undefined : columnOf.get(data.ports[step.hops[hop[7]][0]].name);
      const ay = y + 6; // the arrow; the frame and decision above it
      let x0 = x;
      if (before === undefined) {
        g.appendChild(node("circle", { class: "hop-start", cx: x, cy: ay, r: 4 }));
      } else if (before === column) {
        g.appendChild(node("path", { class: "hop-arrow", d: `M${x},${ay - 6} c14,0 14,12 2,12` }));
      } else {
        x0 = LEFT + COLUMN * before + COLUMN / 2;
        g.appendChild(node("line", { class: "hop-arrow", x1: x0, y1: ay, x2: x + (x > x0 ? -4 : 4), y2: ay }));
      }
      const frame = data.frames[hop[5]];
      const label = node("text", { class: "label", x: Math.min(x0, x) + 4, y: y - 5 }, `${hop[2]} ${frame[0]}`);
      if (hop[6]) label.appendChild(node("tspan", { class: "decision" }, `  # ${hop[6]}`));
      g.appendChild(label);
      g.appendChild(node("title", {}, `${port} (${hop[2]}), packet ${hop[3]}`));
      g.addEventListener("click", () => showHop(row.number));
      svg.appendChild(g);
    });
    sequence.appendChild(svg);
  }

  function text(tag, words, className) {
    const el = document.createElement(tag);
    el.textContent = words;
    if (className) el.className = className;
    return el;
  }

  function showHop(number) {
    const step = data.steps[shown];
    const hop = step.hops[number];
    const port = data.ports[hop[0]];
    const frame = data.frames[hop[5]];
    sequence.querySelectorAll(".row.current").forEach((el) => el.classList.remove("current"));
    const row = sequence.querySelector(`.hop-row[data-hop="${number}"]`);
    if (row) {
      row.classList.add("current");
      const top = row.querySelector("rect.band").y.baseVal.value;
      sequence.scrollTop = Math.max(0, top - sequence.clientHeight / 2);
    }
    drawPath(step, number);
    clear(details);
    details.dataset.hop = number;
    details.appendChild(text("h3", `Hop ${number + 1} of ${step.hops.length}: ${port.name}, ${hop[2]}`));
    details.appendChild(text("p", frame[0]));
    if (hop[6]) details.appendChild(text("p", `decision: ${hop[6]}`, "decision"));
    details.appendChild(text("p", `time ${micros(hop[4])}, packet ID ${hop[3]}; capture ${port.file}, frame ${hop[1]}`));
    details.appendChild(text("p", "The same frame in Wireshark's tshark (from the output folder):"));
    const vxlan = frame[1].some(([name]) => name.startsWith("VXLAN")) ? " -d udp.port==8472,vxlan" : "";
    details.appendChild(text("pre", `tshark -r ${port.file}${vxlan} -Y 'frame.number == ${hop[1]}' -V`, "tshark"));
    const table = document.createElement("table");
    for (const [name, value] of frame[1]) {
      const tr = document.createElement("tr");
      tr.appendChild(text("td", name));
      tr.appendChild(text("td", value));
      table.appendChild(tr);
    }
    details.appendChild(table);
  }

  function selectStep(index) {
    shown = index;
    const step = data.steps[index];
    const result = document.getElementById("step-result");
    clear(result);
    result.appendChild(text("span", step.outcome || "", "outcome" + (step.drops.length ? " bad" : "")));
    result.appendChild(document.createTextNode(` ${step.result}; ${step.hops.length} hops, ${step.drops.length} drops`));
    if (step.hopsNotShown) {
      result.appendChild(document.createTextNode(` (${step.hopsNotShown} more hops are not in this report: the report carries ${MAX_HOPS} in all; manifest.json and the captures have them)`));
    }
    drawPath(step);
    drawSequence(step);
    clear(details);
    details.appendChild(text("p", "Click a hop in the sequence diagram for the frame's fields and the tshark command that shows it.", "hint"));
  }

  function fold(toggle) {
    const group = picture.querySelector(`.pods[data-node="${CSS.escape(toggle.dataset.node)}"]`);
    const box = picture.querySelector(`rect.node[data-node="${CSS.escape(toggle.dataset.node)}"]`);
    const folded = group.classList.toggle("folded");
    if (!box.dataset.height) box.dataset.height = box.getAttribute("height");
    box.setAttribute("height", folded ? group.dataset.foldedHeight : box.dataset.height);
    toggle.textContent = (folded ? "▸" : "▾") + toggle.textContent.slice(1);
    let bottom = 0;
    picture.querySelectorAll("rect.node, rect.host").forEach((rect) => {
      bottom = Math.max(bottom, Number(rect.getAttribute("y")) + Number(rect.getAttribute("height")));
    });
    picture.setAttribute("height", bottom + 24);
    picture.setAttribute("viewBox", `0 0 ${picture.getAttribute("width")} ${bottom + 24}`);
    if (shown !== null) drawPath(data.steps[shown]);
  }

  picture.querySelectorAll(".toggle").forEach((toggle) => toggle.addEventListener("click", () => fold(toggle)));
  chooser.addEventListener("change", () => selectStep(Number(chooser.value)));
  if (data.steps.length) selectStep(Number(chooser.value));
  window.kpktReadyMs = performance.now();
})();
