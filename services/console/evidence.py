"""What the incident page draws from the observer's record: metric plots, the topology with the
blast radius, and the log lines of the compressed context. Geometry only (numbers and names);
the SVG and HTML are written by the templates, so no data is ever spliced into markup here.

Why server-side SVG: a plot of 120 points is a few hundred bytes of path; a chart library would
be a download, a build and a licence to vendor for what ``<polyline>`` does.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from agents.blast import dependents

PLOT_W, PLOT_H, PAD = 360, 96, 4
BOX_W, BOX_H, COL_GAP, ROW_GAP = 150, 26, 40, 10
MAX_GRAPH_NODES = 40
MAX_LOG_LINES = 400


def _iso(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else ""


def plot(series: dict[str, Any], *, split_at: float | None) -> dict[str, Any] | None:
    """A sparkline with the fault window shaded, the change point marked and the before/after levels.

    ``series`` is one entry of the observer's record: component, metric, before, after, at, points.
    """
    points = [(float(t), float(v)) for t, v in series.get("points") or []]
    if len(points) < 2:
        return None
    t0, t1 = points[0][0], points[-1][0]
    values = [v for _, v in points] + [float(x) for x in (series.get("before"), series.get("after")) if x is not None]
    low, high = min(values), max(values)
    span_t, span_v = (t1 - t0) or 1.0, (high - low) or 1.0

    def x(t: float) -> float:
        return round(PAD + (t - t0) / span_t * (PLOT_W - 2 * PAD), 1)

    def y(v: float) -> float:
        return round(PLOT_H - PAD - (v - low) / span_v * (PLOT_H - 2 * PAD), 1)

    def inside(t: float | None) -> float | None:
        return x(t) if t is not None and t0 <= t <= t1 else None

    at = series.get("at")
    return {
        "component": str(series.get("component") or ""), "metric": str(series.get("metric") or ""),
        "w": PLOT_W, "h": PLOT_H, "line": " ".join(f"{x(t)},{y(v)}" for t, v in points),
        "split_x": inside(split_at), "change_x": inside(float(at) if at is not None else None),
        "before_y": y(float(series["before"])) if series.get("before") is not None else None,
        "after_y": y(float(series["after"])) if series.get("after") is not None else None,
        "before": series.get("before"), "after": series.get("after"), "z": series.get("z"),
        "low": low, "high": high, "start": _iso(t0), "end": _iso(t1), "at": _iso(float(at)) if at else "",
    }


def _neighbours(topology: dict[str, Any]) -> dict[str, set[str]]:
    near: dict[str, set[str]] = {}
    for caller, callee in topology.get("edges") or []:
        near.setdefault(caller, set()).add(callee)
        near.setdefault(callee, set()).add(caller)
    for service, node in (topology.get("placement") or {}).items():
        near.setdefault(service, set()).add(node)
        near.setdefault(node, set()).add(service)
    return near


def topology_view(topology: dict[str, Any], *, root: str, root_kind: str = "service") -> dict[str, Any] | None:
    """The components around ``root`` in columns by distance, call edges and placements, and who is
    in the blast radius (everything that calls ``root`` directly or through others, and the services
    on it when it is a node: the same rule the actor's policy gate applies, ``agents.blast``).
    """
    near = _neighbours(topology)
    if not root or root not in near:
        return None
    distance = {root: 0}
    queue = deque([root])
    while queue:
        here = queue.popleft()
        for other in sorted(near.get(here, ())):
            if other not in distance:
                distance[other] = distance[here] + 1
                queue.append(other)
    shown = sorted(distance, key=lambda n: (distance[n], n))[:MAX_GRAPH_NODES]
    kinds = {n: (info or {}).get("kind", "") for n, info in (topology.get("components") or {}).items()}
    placement = dict(topology.get("placement") or {})
    kind = root_kind if root_kind in {"node", "service"} else kinds.get(root, "service")
    blast = dependents(root, kind=kind, topology={"edges": [tuple(e) for e in topology.get("edges") or []],
                                                   "placement": placement})
    alerted = set(topology.get("alerted") or [])
    columns: dict[int, list[str]] = {}
    for name in shown:
        columns.setdefault(distance[name], []).append(name)
    boxes = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            boxes[name] = {"name": name, "x": col * (BOX_W + COL_GAP) + 2, "y": row * (BOX_H + ROW_GAP) + 2,
                           "kind": kinds.get(name) or ("node" if name in placement.values() else "service"),
                           "role": "root" if name == root else ("blast" if name in blast else "other"),
                           "alerted": name in alerted}
    lines = []
    for caller, callee in topology.get("edges") or []:
        if caller in boxes and callee in boxes and caller != callee:
            lines.append(_connector(boxes[caller], boxes[callee], kind="call"))
    for service, node in placement.items():
        if service in boxes and node in boxes:
            lines.append(_connector(boxes[service], boxes[node], kind="placement"))
    width = (max(columns) + 1) * (BOX_W + COL_GAP) - COL_GAP + 4
    height = max(len(v) for v in columns.values()) * (BOX_H + ROW_GAP) + 4
    return {"root": root, "boxes": list(boxes.values()), "lines": lines, "w": width, "h": height,
            "box_w": BOX_W, "box_h": BOX_H, "blast": blast, "hidden": len(distance) - len(shown),
            "upstream": sorted(n for n in blast if n in boxes)}


def _connector(a: dict[str, Any], b: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """A line from box ``a`` to box ``b`` (arrow at ``b``), leaving from the facing sides."""
    if a["x"] == b["x"]:  # same column: right edge to right edge, bowed out
        x1, x2 = a["x"] + BOX_W, b["x"] + BOX_W
    elif a["x"] < b["x"]:
        x1, x2 = a["x"] + BOX_W, b["x"]
    else:
        x1, x2 = a["x"], b["x"] + BOX_W
    return {"x1": x1, "y1": a["y"] + BOX_H / 2, "x2": x2, "y2": b["y"] + BOX_H / 2, "kind": kind,
            "label": f"{a['name']} {'calls' if kind == 'call' else 'runs on'} {b['name']}"}


def _line_kind(text: str) -> str:
    if text.startswith(("[context]", "#")):
        return "header"
    if text.lstrip().startswith("ids:"):
        return "ids"
    if "metric anomaly:" in text:
        return "metric"
    if "change:" in text:
        return "change"
    return "log"


def log_lines(context: str, *, component: str = "") -> list[dict[str, str]]:
    """The compressed context's lines with their kind (header, ids, metric, change, log); with
    ``component`` only the log, metric and change lines that name it. Bounded, so a huge context
    cannot make a huge page."""
    out = []
    for line in context.splitlines():
        text = line.rstrip()
        kind = _line_kind(text)
        if not text or (component and (component not in text or kind in {"header", "ids"})):
            continue
        out.append({"kind": kind, "text": text})
        if len(out) >= MAX_LOG_LINES:
            break
    return out
