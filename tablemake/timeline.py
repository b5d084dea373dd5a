"""One run as a single self-contained HTML page: a Gantt timeline per worker slot, the
critical path, a table of every target, and the graph.

Pure rendering over recorded run data; no network, no scripts, no external assets, so the
file can be mailed, archived or served as is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from math import floor, log10

from tablemake.draw import EMPHASIS, PAGE_CSS, NodeState, NodeStatus, embed_svg, to_svg
from tablemake.graph import TargetGraph, topological_order
from tablemake.history import find_run, format_seconds, format_time, summarize_run
from tablemake.state import RunRecord, StateStore, TargetRunRecord

BAR_COLOURS = {"built": "#4f9d69", "failed": "#d64541"}
_LABEL_W, _CHART_W, _ROW_H, _AXIS_H = 84.0, 1040.0, 30.0, 26.0


@dataclass(frozen=True)
class Bar:
    """One target's execution, in seconds since the run started."""

    target: str
    status: str
    start: float
    end: float
    slot: int
    critical: bool

    @property
    def seconds(self) -> float:
        return self.end - self.start


def assign_slots(entries: Sequence[TargetRunRecord]) -> dict[str, int]:
    """Greedy interval colouring in start order, lowest free slot first. It uses exactly as
    many slots as the most targets that ran at once, so a ``-j N`` run gets at most N rows,
    one per busy worker."""
    free_at: list[float] = []
    slots: dict[str, int] = {}
    for entry in sorted(_timed(entries), key=lambda e: (e.started or 0.0, e.finished or 0.0)):
        start, end = entry.started or 0.0, entry.finished or 0.0  # both set: see _timed
        slot = next((i for i, busy in enumerate(free_at) if busy <= start), len(free_at))
        if slot == len(free_at):
            free_at.append(end)
        free_at[slot] = end
        slots[entry.target] = slot
    return slots


def critical_path(entries: Sequence[TargetRunRecord], graph: TargetGraph) -> list[str]:
    """The chain of dependent targets with the most summed run time in this run, first to
    last: the wall time no number of workers could have beaten."""
    timed = {e.target: e for e in _timed(entries)}
    length: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for name in topological_order(graph):
        if name not in timed:
            continue
        done = [d for d in graph.deps[name] if d in length]
        prior = max(done, key=length.__getitem__) if done else None
        entry = timed[name]
        length[name] = (entry.finished or 0.0) - (entry.started or 0.0)
        length[name] += length[prior] if prior else 0.0
        before[name] = prior
    node = max(length, key=length.__getitem__, default=None)
    path: list[str] = []
    while node is not None:
        path.append(node)
        node = before[node]
    return path[::-1]


def _timed(entries: Sequence[TargetRunRecord]) -> list[TargetRunRecord]:
    return [e for e in entries if e.started is not None and e.finished is not None]


def run_bars(
    run: RunRecord, entries: Sequence[TargetRunRecord], critical: Collection[str]
) -> list[Bar]:
    slots = assign_slots(entries)
    return [
        Bar(
            e.target,
            e.status,
            (e.started or 0.0) - run.started,
            (e.finished or 0.0) - run.started,
            slots[e.target],
            e.target in critical,
        )
        for e in sorted(_timed(entries), key=lambda e: e.started or 0.0)
    ]


def report_for_run(state: StateStore, graph: TargetGraph, run_id: str | None = None) -> str:
    """The report of run ``run_id`` (or the newest run): what ``tablemake report`` writes."""
    run = find_run(state, run_id)
    return render_run_report(run, state.run_targets(run.id), graph)


def render_run_report(
    run: RunRecord, targets: Sequence[TargetRunRecord], graph: TargetGraph
) -> str:
    path = critical_path(targets, graph)
    bars = run_bars(run, targets, set(path))
    known = [n for n in (t.target for t in targets) if n in graph.deps]
    svg = embed_svg(to_svg(graph, known, states=_graph_states(targets), path=path))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tablemake run {escape(run.id)}</title><style>{PAGE_CSS}{_CSS}</style></head>\n"
        f"<body>{_header(run, targets)}\n<h2>Timeline</h2>\n{_timeline_svg(run, bars)}\n"
        f"<h2>Targets</h2>\n{_table(targets, {b.target: b for b in bars})}\n"
        f'<h2>Graph</h2>\n<div class="graph">{svg}</div>\n</body></html>\n'
    )


def _header(run: RunRecord, targets: Sequence[TargetRunRecord]) -> str:
    summary = summarize_run(run, targets)
    facts = [
        ("started", format_time(run.started)),
        ("duration", format_seconds(summary.seconds)),
        ("built", str(summary.built)),
        ("failed", str(summary.failed)),
        ("skipped", str(summary.skipped)),
        ("trigger", run.trigger),
        ("warehouse", run.warehouse),
    ]
    cells = "".join(
        f'<div class="fact {k}{" bad" if k == "failed" and v != "0" else ""}">'
        f"<span>{k}</span><b>{escape(v)}</b></div>"
        for k, v in facts
    )
    command = f'<p class="command">{escape(run.command)}</p>' if run.command else ""
    return (
        f'<h1>Run {escape(run.id)} <span class="status {escape(run.status)}">'
        f"{escape(run.status)}</span></h1>\n"
        f'<div class="facts">{cells}</div>{command}'
    )


def _timeline_svg(run: RunRecord, bars: Sequence[Bar]) -> str:
    if not bars:
        return "<p>No target ran in this run.</p>"
    total = max([b.end for b in bars] + [(run.finished or run.started) - run.started])
    scale = _CHART_W / (total or 1.0)
    slots = max(b.slot for b in bars) + 1
    width, height = _LABEL_W + _CHART_W + 20, _AXIS_H + slots * _ROW_H + 34
    parts = [
        f'<svg class="timeline" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
        *_axis(total, scale, slots),
        *(
            f'<text class="slot" x="8" y="{_AXIS_H + i * _ROW_H + 19:.0f}">worker {i + 1}</text>'
            for i in range(slots)
        ),
        *(_bar_svg(bar, scale) for bar in bars),
        _legend(_AXIS_H + slots * _ROW_H + 14),
        "</svg>",
    ]
    return "\n".join(parts)


def _axis(total: float, scale: float, slots: int) -> list[str]:
    step = _nice_step(total / 8 if total > 0 else 1.0)
    bottom = _AXIS_H + slots * _ROW_H
    ticks, k = [], 0
    while k * step <= total + 1e-9:
        x = _LABEL_W + k * step * scale
        ticks.append(
            f'<line class="tick" x1="{x:.1f}" y1="{_AXIS_H - 4}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="tick" x="{x:.1f}" y="{_AXIS_H - 9}">'
            f"{format_seconds(k * step)}</text>"
        )
        k += 1
    return ticks


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten: tick labels a reader can add up."""
    power = 10.0 ** floor(log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _bar_svg(bar: Bar, scale: float) -> str:
    x, y = _LABEL_W + bar.start * scale, _AXIS_H + bar.slot * _ROW_H + 4
    width = max(bar.seconds * scale, 2.0)
    label = f"{bar.target} {format_seconds(bar.seconds)}"
    fits = int((width - 8) / 6.2)
    text = label if len(label) <= fits else (bar.target[: fits - 1] + "…" if fits > 3 else "")
    critical = " critical" if bar.critical else ""
    return (
        f'<g class="bar {escape(bar.status)}{critical}" data-target="{escape(bar.target)}">'
        f"<title>{escape(label)} ({escape(bar.status)}, worker {bar.slot + 1}"
        f"{', critical path' if bar.critical else ''})</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{_ROW_H - 8:.0f}" rx="3" '
        f'fill="{BAR_COLOURS.get(bar.status, "#999")}"/>'
        f'<text x="{x + 4:.1f}" y="{y + 15:.1f}">{escape(text)}</text></g>'
    )


def _legend(y: float) -> str:
    items = [
        (f'fill="{BAR_COLOURS["built"]}"', "built"),
        (f'fill="{BAR_COLOURS["failed"]}"', "failed"),
        (f'fill="#fff" stroke="{EMPHASIS}" stroke-width="3"', "critical path"),
    ]
    parts, x = [], _LABEL_W
    for paint, label in items:
        parts.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="16" height="12" rx="2" {paint}/>'
            f'<text class="legend" x="{x + 22:.0f}" y="{y + 10:.0f}">{label}</text>'
        )
        x += 40 + len(label) * 7
    return f'<g class="legend">{"".join(parts)}</g>'


def _table(targets: Sequence[TargetRunRecord], bars: Mapping[str, Bar]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("target", "status", "worker", "start", "duration", "rows", "critical", "error")
    )
    rows = []
    for entry in sorted(targets, key=lambda t: (t.started is None, t.started or 0.0)):
        bar = bars.get(entry.target)
        cells = [
            escape(entry.target),
            f'<span class="status {escape(entry.status)}">{escape(entry.status)}</span>',
            str(bar.slot + 1) if bar else "-",
            f"+{format_seconds(bar.start)}" if bar else "-",
            format_seconds(bar.seconds) if bar else "-",
            str(entry.rows) if entry.rows is not None else "-",
            "★" if bar and bar.critical else "",
            f"<pre>{escape(entry.error)}</pre>" if entry.error else "",
        ]
        rows.append(
            f'<tr class="{"critical" if bar and bar.critical else ""}" '
            f'data-target="{escape(entry.target)}">'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    return f'<table class="targets"><tr>{head}</tr>{"".join(rows)}</table>'


def _graph_states(targets: Sequence[TargetRunRecord]) -> dict[str, NodeState]:
    """What the run did to each node, in the graph's own colours."""
    states: dict[str, NodeState] = {}
    for entry in targets:
        seconds = (entry.finished or 0.0) - (entry.started or 0.0)
        if entry.status == "built":
            states[entry.target] = NodeState(
                NodeStatus.UP_TO_DATE, f"built in {format_seconds(seconds)}"
            )
        elif entry.status == "failed":
            states[entry.target] = NodeState(NodeStatus.FAILED, "failed: " + (entry.error or "?"))
        else:
            states[entry.target] = NodeState(NodeStatus.STALE, f"{entry.status}: {entry.error}")
    return states


_CSS = f"""
h1 .status{{font-size:13px;vertical-align:middle;margin-left:8px}}
.status{{padding:2px 8px;border-radius:10px;background:#eee;font-size:12px}}
.status.ok,.status.built{{background:#dcf2e2;color:#1e6b36}}
.status.failed{{background:#fde0df;color:#a11d1d}}
.status.skipped,.status.interrupted,.status.running{{background:#fff0c2;color:#7a5600}}
.facts{{display:flex;gap:10px;flex-wrap:wrap;margin:4px 0 6px}}
.fact{{border:1px solid #ddd;border-radius:8px;padding:6px 12px;min-width:70px}}
.fact span{{display:block;font-size:11px;color:#666;text-transform:uppercase}}
.fact b{{font-size:17px}} .fact.bad b{{color:#a11d1d}}
.command{{font-family:monospace;color:#555;margin:4px 0}}
svg.timeline text{{font-family:system-ui,sans-serif;font-size:11px}}
svg.timeline .bar text{{fill:#fff;font-weight:600}}
svg.timeline .bar.critical rect{{stroke:{EMPHASIS};stroke-width:3}}
svg.timeline line.tick{{stroke:#e3e3e3}} svg.timeline text.tick{{fill:#777;text-anchor:middle}}
svg.timeline text.slot{{fill:#555}}
table.targets{{border-collapse:collapse;font-size:13px}}
table.targets td,table.targets th{{border-bottom:1px solid #eee;padding:4px 10px;
text-align:left;vertical-align:top}}
table.targets tr.critical td:first-child{{border-left:4px solid {EMPHASIS}}}
table.targets pre{{margin:0;white-space:pre-wrap;color:#a11d1d;max-width:560px}}
"""
