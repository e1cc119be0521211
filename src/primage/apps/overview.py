"""The overview of an application's results: a PNG contact sheet of the tasks' pictures and an HTML report.

Both go to the application's output folder, beside the results they show (`overview.png`,
`report.html`), so they travel with the results (in a Onedata space, colleagues see them too).
Each task shows its picture (the first PNG of its result folder: the segmentation's
overlay.png), its state, and the top-level numbers of its JSON record (the segmentation's
volume_ml, voxel_count...); a failed task shows its error instead. The report links every
picture and log; the contact sheet holds the first MAX_TILES tasks.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .model import DONE, FAILED, Application, Task

MAX_TILES = 200
COLUMNS = 4
THUMB = (320, 150)
CAPTION = 46
PADDING = 10
COLOURS = {"done": (46, 125, 50), "failed": (198, 40, 40), "other": (120, 120, 120)}
MAX_HIGHLIGHTS = 3


@dataclass
class TaskView:
    task: Task
    picture: Path | None
    highlights: list[tuple[str, str]]


def highlights(folder: Path) -> list[tuple[str, str]]:
    """Top-level numbers and yes/no values of the first JSON record of a result folder."""
    try:
        record = next(iter(sorted(folder.glob("*.json"))), None)
        data = json.loads(record.read_text(encoding="utf-8")) if record else {}
    except (OSError, ValueError):
        return []
    found = []
    for key, value in data.items() if isinstance(data, dict) else []:
        if isinstance(value, bool):
            found.append((key, "yes" if value else "no"))
        elif isinstance(value, int | float):
            found.append((key, f"{value:.4g}" if isinstance(value, float) else str(value)))
        if len(found) == MAX_HIGHLIGHTS:
            break
    return found


def views(app: Application, space: Path) -> list[TaskView]:
    result = []
    for task in app.tasks:
        folder = space / task.output
        pictures = sorted(folder.glob("*.png")) if task.state == DONE and folder.is_dir() else []
        result.append(TaskView(task, pictures[0] if pictures else None, highlights(folder) if pictures else []))
    return result


def write(app: Application, space: Path) -> tuple[Path, Path]:
    root = space / app.submission.output
    root.mkdir(parents=True, exist_ok=True)
    shown = views(app, space)
    sheet = contact_sheet(app, shown, root / "overview.png")
    report = html_report(app, shown, root, root / "report.html")
    return sheet, report


# --- the contact sheet ---------------------------------------------------------------------------


def _caption(view: TaskView) -> tuple[str, str]:
    task = view.task
    first = f"{task.index}  {Path(task.input).name}"
    if task.state == FAILED:
        return first, task.error or "failed"
    if task.state != DONE:
        return first, task.state
    return first, "  ".join(f"{k} {v}" for k, v in view.highlights) or "done"


def contact_sheet(app: Application, shown: list[TaskView], target: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    tiles = shown[:MAX_TILES]
    columns = min(COLUMNS, max(len(tiles), 1))
    rows = max(1, -(-len(tiles) // columns))
    width, height = THUMB[0] + 2 * PADDING, THUMB[1] + CAPTION + 2 * PADDING
    header = 40
    sheet = Image.new("RGB", (columns * width, header + rows * height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    big, small = ImageFont.load_default(size=18), ImageFont.load_default(size=12)
    counts = app.counts
    title = f"{app.name}: {counts.done}/{counts.total} done, {counts.failed} failed"
    if len(shown) > len(tiles):
        title += f" (the first {len(tiles)} tasks; every one is in report.html)"
    draw.text((PADDING, 10), title, fill=(20, 20, 20), font=big)
    for number, view in enumerate(tiles):
        x, y = (number % columns) * width + PADDING, header + (number // columns) * height + PADDING
        state = view.task.state if view.task.state in COLOURS else "other"
        draw.rectangle([x - 3, y - 3, x + THUMB[0] + 2, y + THUMB[1] + 2], outline=COLOURS[state], width=3)
        if view.picture:
            try:
                with Image.open(view.picture) as picture:
                    picture.thumbnail(THUMB)
                    offset = ((THUMB[0] - picture.width) // 2, (THUMB[1] - picture.height) // 2)
                    sheet.paste(picture.convert("RGB"), (x + offset[0], y + offset[1]))
            except OSError:
                draw.text((x + 8, y + 8), "picture unreadable", fill=COLOURS["failed"], font=small)
        else:
            draw.rectangle([x, y, x + THUMB[0] - 1, y + THUMB[1] - 1], fill=(232, 232, 232))
            draw.text((x + 8, y + THUMB[1] // 2 - 8), view.task.state.upper(), fill=COLOURS[state], font=big)
        first, second = _caption(view)
        draw.text((x, y + THUMB[1] + 6), _fit(draw, first, small), fill=(20, 20, 20), font=small)
        draw.text((x, y + THUMB[1] + 24), _fit(draw, second, small), fill=COLOURS[state], font=small)
    temporary = target.with_name(f".{target.name}.tmp")
    sheet.save(temporary, format="PNG", optimize=False)
    os.replace(temporary, target)
    return target


def _fit(draw, text: str, font) -> str:
    if draw.textlength(text, font=font) <= THUMB[0]:
        return text
    while text and draw.textlength(text + "...", font=font) > THUMB[0]:
        text = text[:-1]
    return text + "..."


# --- the HTML report -------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.done td.state { color: #2e7d32; } tr.failed td.state { color: #c62828; } tr.failed td.error { color: #c62828; }
img { max-width: 360px; display: block; }
.missing { color: #c62828; font-style: italic; }
code { font-size: 90%; }
"""

# A picture that cannot be shown says so instead of a broken image.
_SCRIPT = """
document.querySelectorAll("img").forEach(function (img) {
  function missing() { var s = document.createElement("span"); s.className = "missing";
    s.textContent = "picture missing: " + img.getAttribute("src"); img.replaceWith(s); }
  if (img.complete && img.naturalWidth === 0) { missing(); } else { img.addEventListener("error", missing); }
});
"""


def html_report(app: Application, shown: list[TaskView], root: Path, target: Path) -> Path:
    submission, counts = app.submission, app.counts
    e = html.escape
    rows = []
    for view in shown:
        task = view.task
        if view.picture:
            link = e(os.path.relpath(view.picture, root))
            picture = f'<a href="{link}"><img src="{link}" alt="{e(task.input)}" loading="lazy"></a>'
        else:
            picture = ""
        facts = "<br>".join(f"{e(k)}: {e(v)}" for k, v in view.highlights)
        log = _log_cell(task.log)
        rows.append(
            f'<tr class="task {e(task.state)}" data-index="{task.index}" data-state="{e(task.state)}">'
            f"<td>{task.index}</td><td><code>{e(task.input)}</code></td><td class='state'>{e(task.state)}</td>"
            f"<td>{'' if task.exit_code is None else task.exit_code}</td>"
            f"<td>{'' if task.seconds is None else f'{task.seconds:.1f}'}</td><td>{task.attempts}</td>"
            f"<td>{facts}</td><td>{picture}</td><td class='error'>{e(task.error)}</td><td>{log}</td></tr>"
        )
    summary = f"{counts.done} of {counts.total} tasks done, {counts.failed} failed"
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(app.name)}: results</title>
<style>{_STYLE}</style></head>
<body>
<h1>{e(app.name)}</h1>
<p id="summary" data-total="{counts.total}" data-done="{counts.done}" data-failed="{counts.failed}">{e(summary)}</p>
<p>Image <code>{e(submission.image)}</code>, inputs <code>{e(submission.files)}</code> in
<code>{e(submission.space or submission.onedata)}</code>, results in <code>{e(str(root))}</code>.
Overview picture: <a href="overview.png">overview.png</a>.</p>
<table>
<thead><tr><th>#</th><th>input</th><th>state</th><th>exit</th><th>seconds</th><th>attempts</th>
<th>result</th><th>picture</th><th>error</th><th>log</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)
    return target


def _log_cell(log: str) -> str:
    """A link to a log file of this machine; a cluster's log is named (`primage apps logs` reads it)."""
    if not log:
        return ""
    if Path(log).is_absolute():
        return f'<a href="{html.escape(Path(log).as_uri())}">log</a>'
    return f"<code>{html.escape(log)}</code>"
