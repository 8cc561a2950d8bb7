"""report.html: a run's output folder as one self-contained page (issue 18).

`model` reads the folder into plain data, `picture` draws the cluster as SVG, `page` writes the
HTML around them; `write_report(folder)` is the one entry point.
"""

from __future__ import annotations

from pathlib import Path

from kpkt import output_folder
from kpkt.errors import KpktError

REPORT_NAME = "report.html"
MAX_HOPS = 5000  # the hops a report carries, steps in order; the rest are counted, not shown


def write_report(folder: Path, manifest: dict | None = None) -> Path:
    """Write `folder`/report.html from the folder's manifest.json and captures, whole or not
    at all (through a temporary file beside it); its path. `manifest`: the manifest's document
    as the run that wrote it has it (kpkt.capture.manifest.document, its hops cut to
    MAX_HOPS), so that the file is not read again; the page is the same."""
    from kpkt.html_report.model import read_run
    from kpkt.html_report.page import render_page

    folder = Path(folder)
    html = render_page(read_run(folder, manifest))
    target = folder / REPORT_NAME
    partial = folder / f".{REPORT_NAME}.tmp"
    try:
        partial.write_text(html, encoding="utf-8")
        partial.replace(target)
        output_folder.record_written(folder, REPORT_NAME)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise KpktError(
            f"{target}: cannot write it ({error.strerror}); make the folder writable"
        ) from None
    return target
