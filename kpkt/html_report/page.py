"""report.html itself: one self-contained page (the style and script shipped beside this module
are inlined, the run is embedded as JSON, nothing is fetched), the same bytes for the same run."""

from __future__ import annotations

import json
from html import escape
from importlib.resources import files

from kpkt.html_report.model import Run
from kpkt.html_report.picture import draw


def render_page(run: Run) -> str:
    here = files("kpkt.html_report")
    style = here.joinpath("report.css").read_text(encoding="utf-8")
    script = here.joinpath("report.js").read_text(encoding="utf-8")
    # `<` never appears raw inside the data, so no string in it can end the script element
    embedded = json.dumps(run.to_json(), separators=(",", ":"), ensure_ascii=False)
    embedded = embedded.replace("<", "\\u003c")
    title = escape(run.topology)
    options = "".join(
        f'<option value="{number}">{step.index + 1}. {escape(step.text)} '
        f"({escape(step.outcome or step.result)})</option>"
        for number, step in enumerate(run.steps)
    )
    chooser = f'<select id="step"{"" if run.steps else " hidden"}>{options}</select>'
    if not run.steps:
        chooser += '<span class="hint">This topology has no traffic steps.</span>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kpkt report: {title}</title>
<style>
{style}</style>
</head>
<body>
<header>
<h1>kpkt report: {title}</h1>
<p>seed {run.seed}, kpkt {escape(run.version)}: {len(run.ports)} capture points,
{len(run.steps)} traffic steps. Every frame is in this folder's pcaps and in all.pcapng.</p>
</header>
<section>
<h2>The cluster</h2>
<p class="hint">Each box is a network namespace; each small box in it an interface (capture
point): name, first address, MAC. Lines are veth pairs, wires, bridge ports and the node's
routing. Click "pods" in a node to fold its pods away; hover an interface for all its details.</p>
<div id="picture" class="scroll">{draw(run.ports, run.needed_ports())}</div>
</section>
<section>
<h2>A step, hop by hop</h2>
<div class="controls"><label for="step">Traffic step:</label>{chooser}</div>
<p id="step-result"></p>
<p class="hint">The picture highlights the interfaces the step's frames crossed, with an arrow
for each move of a packet from one interface to the next. Below, time runs down and every
capture point the step touched is a column: one row per hop, with the frame and what the device
decided there; drops in red at the place they happened.</p>
<div class="columns"><div id="sequence" class="scroll"></div><aside id="hop"></aside></div>
</section>
<script type="application/json" id="run-data">{embedded}</script>
<script>
{script}</script>
</body>
</html>
"""
