"""Evidence items from raw telemetry: metric shifts, log templates, trace edge shifts, change events.

WHY: every hypothesis must cite what it rests on, so each finding is a small dict the console, the
episode and an LLM can quote: ``kind`` (metric|log|trace|change|episode|alert|phrase), ``component``,
``detail`` (human text) plus kind-specific fields (metric, before, after, at, z, template, edge).

Metric series go through the memory library's change-point analysis (``memory.metrics.analyse``,
the same path ``ContextCompressor.fold_metrics`` uses); a series counts as moved when that analysis
finds a change point or spike inside the fault window *and* the fault window's level sits away from
the baseline window's in robust (median/MAD) units, in the direction that is bad for that signal.
Liveness is read apart: a heartbeat / ``up`` series losing its baseline level, a component whose
series all stop before the fault window (no data), or a liveness alert naming it, each say the
component stopped reporting (``signal: liveness``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from agents.diagnosis.signals import bad_direction, is_client_side, log_signal, signal_kind
from memory.metrics import analyse

MIN_Z = 3.0          # robust shift (in baseline noise units) a moved series must reach
REL_FLOOR = 0.05     # noise floor as a share of the baseline level (a flat baseline has MAD 0)
# a liveness series (heartbeat, ``up``) is binary per reporter: its 1 -> 0 step is the instrument's
# resolution, so a robust z would call a dead node "1 sd". Losing all of the baseline's liveness counts
# like a shift of this many noise units, a lost share of it (one replica of two) proportionally less.
# A prior stated here (the same order as the largest resource shifts), not fitted to any data set.
LIVENESS_Z = 20.0
# a success ratio that held one level in every row of a baseline this long (a prior: ten rows, Nezha's
# baseline length) and falls below it in the fault window shows failures the baseline never had, like a
# new error log template: its shift counts at least NEW_FAILURE_Z noise units. The resolution rule reads
# 2 failed requests of 140 as 2 noise units, and a baseline MAD of 0 would make it infinite (on every
# caller as well). Chosen on the train split (PetShop train + Nezha train days) from
# {3, 6, 12, 20, 40, 80, 160, 1000}: best train top-1/3 and fault type (Nezha has no success ratio).
NEVER_FAILED_ROWS = 10
NEW_FAILURE_Z = 160.0
RES_REL = 1e-3   # value gaps below this share of the largest |value| are float noise, not the instrument's step (chosen on train from {0, 1e-3, 1e-2})
ERROR_WORDS = re.compile(r"error|exception|fail|fatal|panic|timeout|refused|unavailable|denied|oom|killed", re.I)
_VARIABLE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+(\.\d+)?")
_TS_PREFIX = re.compile(r"^\s*(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?|\d{9,10}(?:\.\d+)?)\s*")


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return 0.0 if n == 0 else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0)


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def to_epoch(value: Any) -> float | None:
    """Epoch seconds from a number, an ISO string or a datetime; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def resolution(values: list[float]) -> float:
    """The series' measurement step: the smallest gap between distinct values (1 for a request counter).

    WHY: a shift smaller than what the instrument can show is not evidence; a sparse counter going
    0 -> 1 against a flat-zero baseline would otherwise be an infinite shift.
    """
    distinct = sorted(set(values))
    floor = RES_REL * max((abs(v) for v in values), default=0.0)
    gaps = [b - a for a, b in zip(distinct, distinct[1:], strict=False) if b - a > floor]
    return min(gaps) if gaps else 0.0


def robust_shift(base: list[float], fault: list[float], *, direction: int = 1) -> tuple[float, float, float]:
    """(before, after, z): the fault window's level against the baseline's, in robust noise units.

    The noise unit pools both windows' MADs weighted by their sizes (the pooled variance of a
    two-sample t-test, with MADs): with the few baseline points an incident gives, a flat baseline
    (MAD 0) would otherwise make any wobble of a sparse series look infinite, while a long flat
    baseline still makes a small departure count. ``after`` is the fault window's median, or its worst point (at half weight)
    when that is further out, so a fault showing for one minute of five still counts. A success ratio
    that never moved in a long baseline and falls now scores at least ``NEW_FAILURE_Z``. z is signed:
    positive means the bad way.
    """
    before, med = _median(base), _median(fault)
    mad_b = _median([abs(v - before) for v in base]) * 1.4826
    mad_f = _median([abs(v - med) for v in fault]) * 1.4826
    pooled = math.sqrt((len(base) * mad_b**2 + len(fault) * mad_f**2) / (len(base) + len(fault)))
    # a level is a noise scale for magnitudes (bytes, seconds), not for a success ratio sitting at its ceiling
    level = REL_FLOOR * abs(before) if direction > 0 else 0.0
    scale = max(pooled, level, resolution(base + fault), 1e-9)
    worst = max(fault, key=lambda v: direction * (v - before))
    z_med = direction * (med - before) / scale
    z_worst = 0.5 * direction * (worst - before) / max(mad_b, level, scale / 2, 1e-9)
    if direction < 0 and len(base) >= NEVER_FAILED_ROWS and min(base) == max(base) and direction * (worst - before) > 0:
        # a success ratio that held one level in every baseline row and left it now: failures are new
        z_worst = max(z_worst, NEW_FAILURE_Z)
    if z_worst > z_med:
        return before, worst, z_worst
    return before, med, z_med


def metric_evidence(component: str, name: str, points: list[tuple[float, float]], *,
                    split_at: float) -> dict[str, Any] | None:
    """An evidence item when the series moved the bad way after ``split_at``, else None."""
    clean = [(float(t), float(v)) for t, v in points if v is not None and not math.isnan(float(v))]
    base = [v for t, v in clean if t < split_at]
    fault = [v for t, v in clean if t >= split_at]
    if len(base) < 2 or not fault:
        return None
    direction = bad_direction(name)
    kind = signal_kind(name)
    if kind == "liveness" and direction < 0:
        return _liveness_evidence(component, name, base, [(t, v) for t, v in clean if t >= split_at])
    before, after, z = robust_shift(base, fault, direction=direction)
    if z < MIN_Z:
        return None
    values = [v for _, v in clean]
    if direction < 0:  # a success ratio is analysed as its shortfall from the ceiling (an error share)
        ceiling = max(values)
        values = [ceiling - v for v in values]
    analysis = analyse(name, [t for t, _ in clean], values, min_segment=min(3, max(1, len(fault))))
    step = (clean[-1][0] - clean[0][0]) / max(len(clean) - 1, 1)
    changes = [c for c in analysis.change_points if c.time >= split_at - 2 * step and c.after > c.before]
    spiked = analysis.spike_z >= 6.0 and analysis.peak_time >= split_at
    if not changes and not spiked and z < 2 * MIN_Z:
        return None  # the robust shift alone is not enough unless it is large
    at = changes[0].time if changes else (analysis.peak_time if spiked else split_at)
    return {
        "kind": "metric", "component": component, "metric": name, "signal": kind,
        "client_side": is_client_side(name), "before": round(before, 6), "after": round(after, 6),
        "at": at, "z": round(z, 2), "change_point": bool(changes),
        "detail": f"{name} on {component} moved {before:.4g} -> {after:.4g} at {iso(at)} ({z:.1f} robust sd, {kind})",
    }


def fall_evidence(component: str, name: str, points: list[tuple[float, float]], *,
                  split_at: float) -> dict[str, Any] | None:
    """An item (``fell: True``) when the series dropped clearly (MIN_Z) after ``split_at``, else None.

    WHY: a fall of a resource series is no fault of its own, but on a component that stopped reporting it
    says which kind of silence it is (a hung kernel spins its CPUs, a node cut off from the network gets no
    work): ``faults.fault_scores`` reads it there only.
    """
    clean = [(float(t), float(v)) for t, v in points if v is not None and not math.isnan(float(v))]
    base = [v for t, v in clean if t < split_at]
    fault = [v for t, v in clean if t >= split_at]
    if len(base) < 2 or not fault:
        return None
    before, after, z = robust_shift(base, fault, direction=-1)
    if z < MIN_Z:
        return None
    return {"kind": "metric", "component": component, "metric": name, "signal": signal_kind(name), "fell": True,
            "client_side": is_client_side(name), "before": round(before, 6), "after": round(after, 6),
            "at": split_at, "z": round(z, 2),
            "detail": f"{name} on {component} fell {before:.4g} -> {after:.4g} ({z:.1f} robust sd)"}


def _liveness_evidence(component: str, name: str, base: list[float], fault: list[tuple[float, float]]
                       ) -> dict[str, Any] | None:
    """The component stopped reporting (heartbeat / ``up`` fell): z is the lost share of its baseline liveness."""
    before = _median(base)
    if before <= 0:
        return None  # it was not alive before either: nothing was lost in this window
    # a steady baseline makes any missed beat count (``absent_over_time``); a flaky one needs the level to fall
    after = min(v for _, v in fault) if min(base) >= before else _median([v for _, v in fault])
    lost = max(0.0, min(1.0, (before - after) / before))
    z = LIVENESS_Z * lost
    if z < MIN_Z:
        return None
    at = next((t for t, v in fault if v < before), fault[0][0])
    return {
        "kind": "metric", "component": component, "metric": name, "signal": "liveness",
        "client_side": False, "before": round(before, 6), "after": round(after, 6), "at": at, "z": round(z, 2),
        "change_point": True,
        "detail": f"{name} on {component} fell {before:.4g} -> {after:.4g} at {iso(at)}: "
                  f"{100 * lost:.0f}% of its liveness lost (stopped reporting)",
    }


def absence_evidence(component: str, series: dict[str, list[tuple[float, float]]], *,
                     split_at: float) -> dict[str, Any] | None:
    """A component whose every series reported before ``split_at`` and none after it has gone silent."""
    stamps = [float(t) for points in series.values() for t, v in points if v is not None]
    if not stamps or max(stamps) >= split_at or sum(1 for t in stamps if t < split_at) < 2:
        return None
    last = max(stamps)
    return {"kind": "metric", "component": component, "metric": "(no data)", "signal": "liveness", "client_side": False,
            "before": 1.0, "after": 0.0, "at": last, "z": LIVENESS_Z, "change_point": True,
            "detail": f"{component} sent no data after {iso(last)}: its telemetry stopped (no data in the fault window)"}


def alert_liveness_evidence(alert: dict[str, Any], component: str) -> dict[str, Any] | None:
    """A liveness alert (``NodeHeartbeatMissing``, ``TargetDown``/``up == 0``) is itself the observation that
    ``component`` stopped reporting: the alerting rule saw every scrape, a probe sees a downsampled series."""
    name = str(alert.get("name") or "")
    if not name or signal_kind(name) != "liveness":
        return None
    at = to_epoch(alert.get("starts_at") or alert.get("time"))
    return {"kind": "alert", "component": component, "alert": name, "signal": "liveness", "client_side": False,
            "z": LIVENESS_Z, "at": at,
            "detail": f"alert {name} on {component} at {iso(at)}: it stopped reporting (liveness rule fired)"}


def template_of(line: str) -> str:
    """A log line's template: timestamp dropped, numbers and ids masked (enough to count repeats)."""
    return _VARIABLE.sub("<*>", _TS_PREFIX.sub("", line)).strip()[:200]


def log_evidence(component: str, lines: list[str], *, split_at: float) -> list[dict[str, Any]]:
    """Error-like templates seen in the fault window, marked new when the baseline never had them."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for line in lines:
        m = _TS_PREFIX.match(line)
        ts = to_epoch(m.group(1)) if m else None
        template = template_of(line)
        (before if ts is not None and ts < split_at else after)[template] += 1
    out = []
    for template, count in after.most_common():
        signal = log_signal(template)
        if not ERROR_WORDS.search(template) and signal == "errors":
            continue  # neither an error nor a resource running out (a warning about an empty pool is both)
        new = template not in before
        out.append({"kind": "log", "component": component, "template": template, "count": count, "new": new,
                    "signal": signal,
                    "detail": f"{'new ' if new else ''}error template on {component} x{count}: {template[:120]}"})
        if len(out) >= 5:
            break
    return out


def trace_evidence(edge_stats: dict[str, Any], *, split_at: float) -> list[dict[str, Any]]:
    """Latency / error shifts of one call edge (``{"caller", "callee", "latency": [...], "errors": [...]}``)."""
    caller, callee = edge_stats.get("caller"), edge_stats.get("callee")
    out = []
    for key, signal in (("latency", "latency"), ("errors", "errors")):
        points = edge_stats.get(key) or []
        found = metric_evidence(callee or "?", f"{caller}->{callee} {key}", points, split_at=split_at)
        if found:
            found.update(kind="trace", signal=signal, edge=[caller, callee], client_side=False,
                         detail=f"calls {caller} -> {callee}: {key} {found['before']:.4g} -> {found['after']:.4g} "
                                f"({found['z']:.1f} robust sd)")
            out.append(found)
    return out


def change_evidence(change: dict[str, Any]) -> dict[str, Any]:
    """A deploy / config / cloud change as an evidence item."""
    at = to_epoch(change.get("at") or change.get("timestamp"))
    component = str(change.get("component") or "")
    what = change.get("kind") or change.get("type") or "change"
    return {"kind": "change", "component": component, "change": what, "at": at, "signal": "change",
            "detail": f"{what} on {component or 'unknown component'} at {iso(at)}: {change.get('detail', '')}".strip()}
