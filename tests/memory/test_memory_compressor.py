"""ContextCompressor on real (Nezha, MIT) logs and metrics: budget, retention, incrementality, state."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from memory.compressor import ContextCompressor
from memory.entities import extract_entities
from memory.tokens import count_tokens

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "memory"

LOG = (FIXTURES / "trainticket_08_43.log").read_text().splitlines()
LEVEL = re.compile(r" (WARN|ERROR) ")


def critical_lines() -> list[str]:
    return [line for line in LOG if LEVEL.search(line)]


def test_render_respects_budget_and_keeps_every_error_shape():
    c = ContextCompressor(budget_tokens=1500)
    c.fold(LOG)
    tokens_in = count_tokens("\n".join(LOG))
    out = c.render()
    assert 0 < count_tokens(out) <= 1500
    assert 1 - count_tokens(out) / tokens_in > 0.9
    # Every distinct error/warn message shape (ids masked) is recoverable from the output.
    mask = re.compile(r"[0-9a-f]*[0-9][0-9A-Za-z_.:-]*")
    shapes = {mask.sub("#", LEVEL.split(line, 1)[-1].strip())[:70] for line in critical_lines()}
    out_shapes = mask.sub("#", out)
    missing = [s for s in shapes if s not in out_shapes]
    assert not missing, missing


def test_unbounded_render_keeps_all_critical_ids_and_dedups():
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(LOG)
    out = c.render()
    ids = {v for line in critical_lines() for _, v in extract_entities(line)}
    assert ids, "fixture should have ids on error lines"
    missing = [i for i in ids if i not in out]
    assert not missing
    assert len(out.splitlines()) < len(LOG) / 2
    stats = c.stats()
    assert stats["lines"] == len(LOG)
    assert stats["critical_templates"] >= 1
    assert re.search(r"x\d+", out)  # counts are shown


def test_incremental_fold_equals_one_pass_and_state_survives_restart(tmp_path):
    one = ContextCompressor(budget_tokens=1200)
    one.fold(LOG)
    state = tmp_path / "state.json"
    first = ContextCompressor(budget_tokens=1200, state_path=state)
    half = len(LOG) // 2
    first.fold(LOG[:half])
    second = ContextCompressor(budget_tokens=1200, state_path=state)  # a restarted worker
    assert second.stats()["lines"] == half
    second.fold(LOG[half:])
    assert second.render() == one.render()
    again = ContextCompressor(budget_tokens=1200)
    again.load_state(second.dump_state())
    assert again.render() == one.render()


def test_metric_series_reduced_to_the_anomalous_ones():
    c = ContextCompressor(budget_tokens=800)
    flat = [50.0 + (i % 3) * 0.5 for i in range(60)]
    step = [20.0 + (i % 2) * 0.4 for i in range(30)] + [80.0 + (i % 2) * 0.4 for i in range(30)]
    c.fold_metrics("flat_cpu", flat)
    c.fold_metrics("latency_p90", list(enumerate(step, start=1000)))
    names = [a.name for a in c.anomalous_metrics()]
    assert names == ["latency_p90"]
    change = c.anomalous_metrics()[0].change_points[0]
    assert change.time == 1030
    out = c.render()
    assert "latency_p90" in out and "flat_cpu" not in out and "at 1030" in out


def test_real_cpu_contention_metric_is_rendered_with_its_peak():
    path = FIXTURES / "currencyservice-cf787dd48-vpjrd_metric.csv"
    rows = list(csv.DictReader(path.open()))
    series = [(float(r["TimeStamp"]), float(r["CpuUsageRate(%)"])) for r in rows]
    c = ContextCompressor(budget_tokens=800)
    c.fold_metrics("currencyservice cpu %", series[:25])
    c.fold_metrics("currencyservice cpu %", series[25:])  # incremental append
    analysis = {a.name: a for a in c.anomalous_metrics()}
    assert "currencyservice cpu %" in analysis
    assert analysis["currencyservice cpu %"].peak > 100  # the contention window


def test_tiny_budget_never_overflows():
    c = ContextCompressor(budget_tokens=40)
    c.fold(LOG)
    assert count_tokens(c.render()) <= 40
    assert count_tokens(c.render(5)) <= 5


class _Model:
    """A ``complete`` callable standing in for the LLM (the HTTP client is tested in tests/platform)."""

    def __init__(self) -> None:
        self.reply = ""
        self.calls: list[dict] = []

    def __call__(self, prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]:
        self.calls.append({"prompt": prompt, "max_tokens": max_tokens, "system": system})
        return self.reply, 130


def test_llm_pass_used_when_it_keeps_ids_and_falls_back_otherwise():
    model = _Model()
    c = ContextCompressor(budget_tokens=600, llm=model)
    c.fold(LOG)
    deterministic = ContextCompressor(budget_tokens=600)
    deterministic.fold(LOG)
    det = deterministic.render()
    must = c._must_keep(det)
    model.reply = "summary: contacts service errors; ids " + " ".join(must)
    out = c.render()
    assert out.startswith("summary:") and c.stats()["last_llm"]["used_llm"]
    assert c.stats()["last_llm"]["tokens"] == 130 and model.calls[0]["system"]
    model.reply = "summary without ids"
    out = c.render()
    assert out == det and not c.stats()["last_llm"]["used_llm"] if must else True


def test_llm_unreachable_falls_back_to_deterministic():
    def unreachable(prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]:
        raise TimeoutError("timed out")

    c = ContextCompressor(budget_tokens=500, llm=unreachable)
    c.fold(LOG)
    plain = ContextCompressor(budget_tokens=500)
    plain.fold(LOG)
    assert c.render() == plain.render()
    assert "failed" in c.stats()["last_llm"]["reason"]
