"""Metric series reduction: keep only the anomalous series, described by their change points.

WHY: an incident context typically carries dozens of series per pod or node, and nearly all of
them are flat. The diagnoser needs the few that moved, when they moved and by how much. This is
deterministic (no model, no randomness): binary segmentation on a mean-shift cost with a
BIC-style penalty, and a robust (median/MAD) spike test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast


@dataclass
class ChangePoint:
    """A shift in the series mean at ``time`` (the first point of the new segment)."""

    time: float
    before: float
    after: float
    z: float


@dataclass
class SeriesAnalysis:
    """What the renderer needs about one series."""

    name: str
    points: int
    baseline: float
    latest: float
    peak: float
    peak_time: float
    change_points: list[ChangePoint] = field(default_factory=list)
    spike_z: float = 0.0

    @property
    def anomalous(self) -> bool:
        return bool(self.change_points) or self.spike_z >= 6.0

    @property
    def score(self) -> float:
        """Salience of the series: its strongest shift or spike, in noise units."""
        best = max((abs(c.z) for c in self.change_points), default=0.0)
        return max(best, self.spike_z)


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return 0.0
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def _noise_sigma(values: Sequence[float]) -> float:
    """Robust noise level from first differences (insensitive to the level shifts we look for)."""
    diffs = [b - a for a, b in zip(values, values[1:], strict=False)]
    if not diffs:
        return 0.0
    med = _median(diffs)
    mad = _median([abs(d - med) for d in diffs])
    return 1.4826 * mad / math.sqrt(2.0)


def _best_split(prefix: list[float], prefix_sq: list[float], lo: int, hi: int, min_seg: int) -> tuple[int, float]:
    """Index splitting [lo, hi) that most reduces the squared-error cost, and that reduction."""

    def cost(a: int, b: int) -> float:
        n = b - a
        s = prefix[b] - prefix[a]
        return (prefix_sq[b] - prefix_sq[a]) - s * s / n

    whole = cost(lo, hi)
    best_i, best_gain = -1, 0.0
    for i in range(lo + min_seg, hi - min_seg + 1):
        gain = whole - cost(lo, i) - cost(i, hi)
        if gain > best_gain:
            best_i, best_gain = i, gain
    return best_i, best_gain


def analyse(
    name: str,
    times: Sequence[float],
    values: Sequence[float],
    *,
    max_change_points: int = 3,
    min_segment: int = 3,
    min_relative_shift: float = 0.1,
) -> SeriesAnalysis:
    """Change points (binary segmentation) and the strongest spike of one series."""
    n = len(values)
    if n == 0:
        return SeriesAnalysis(name=name, points=0, baseline=0.0, latest=0.0, peak=0.0, peak_time=0.0)
    peak_i = max(range(n), key=lambda i: abs(values[i] - values[0]))
    head = values[: max(min_segment, n // 3)]
    baseline = _median(head)
    result = SeriesAnalysis(
        name=name, points=n, baseline=baseline, latest=values[-1], peak=values[peak_i], peak_time=times[peak_i]
    )
    if n < 2 * min_segment:
        return result
    sigma = _noise_sigma(values)
    scale = max(abs(baseline), 1e-9)
    floor = max(sigma, 0.01 * scale, 1e-9)
    # Spike test: distance of the extreme point from the baseline, in robust noise units.
    head_mad = _median([abs(v - baseline) for v in head]) * 1.4826
    result.spike_z = abs(values[peak_i] - baseline) / max(head_mad, floor)
    if abs(values[peak_i] - baseline) < min_relative_shift * scale:
        result.spike_z = 0.0

    prefix, prefix_sq = [0.0], [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
        prefix_sq.append(prefix_sq[-1] + v * v)
    penalty = 2.0 * floor * floor * math.log(n) * 3.0
    segments = [(0, n)]
    splits: list[int] = []
    while len(splits) < max_change_points:
        best = None
        for lo, hi in segments:
            i, gain = _best_split(prefix, prefix_sq, lo, hi, min_segment)
            if i > 0 and gain > penalty and (best is None or gain > best[2]):
                best = (lo, hi, gain, i)
        if best is None:
            break
        lo, hi, _, i = best
        segments.remove((lo, hi))
        segments += [(lo, i), (i, hi)]
        splits.append(i)
    bounds = sorted(splits)
    edges = [0, *bounds, n]
    for k, i in enumerate(bounds):
        before = _median(values[edges[k] : i])
        after = _median(values[i : edges[k + 2]])
        shift = after - before
        if abs(shift) < min_relative_shift * max(abs(before), 1e-9) or abs(shift) < 3 * floor:
            continue
        result.change_points.append(ChangePoint(time=times[i], before=before, after=after, z=shift / floor))
    return result


def normalise_series(series: Iterable[float] | Iterable[tuple[float, float]], start: int = 0) -> list[tuple[float, float]]:
    """Accept plain values (indexed from ``start``) or (time, value) pairs; return pairs."""
    out: list[tuple[float, float]] = []
    for i, item in enumerate(series):
        if isinstance(item, tuple | list):
            out.append((float(item[0]), float(item[1])))
        else:
            out.append((float(start + i), float(cast(float, item))))
    return out
