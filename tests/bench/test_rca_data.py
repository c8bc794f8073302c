"""The Nezha converter cuts each case where the data says: baseline outside earlier faults, fault window
ending at the next injection, the alert on the system's traced entry service."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from bench.rca_data import NEZHA_ENTRY, nezha_cases

HEADER = ["Time", "TimeStamp", "PodName", "CpuUsage(m)", "NodeCpuUsageRate(%)"]


def _minute(m: int) -> str:
    return f"2023-01-29 {8 + m // 60:02d}:{m % 60:02d}:05.1 +0000 UTC m=+1.0"


def _nezha_day(root: Path, faults: list[tuple[int, str]], pods: list[str], minutes: int = 60) -> None:
    day = root / "rca_data" / "2023-01-29"
    (day / "metric").mkdir(parents=True)
    for pod in pods:
        with (day / "metric" / f"{pod}_metric.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows([_minute(m), "0", pod, str(10 + m), "5"] for m in range(minutes))
    listed = [{"inject_time": _minute(m)[:19], "inject_timestamp": "0", "inject_pod": pod, "inject_type": "return"}
              for m, pod in faults]
    (day / "2023-01-29-fault_list.json").write_text(json.dumps({"08": listed}))


def _stamps(case: Path) -> list[float]:
    with (case / "metrics.csv").open(newline="") as handle:
        return sorted({float(r["timestamp"]) for r in csv.DictReader(handle)})


def test_fault_window_stops_at_the_next_injection_and_baseline_skips_earlier_faults(tmp_path):
    pods = ["ts-gateway-service-6f6cfc45b-h5m2n", "ts-contacts-service-866bd68c97-xcqfx"]
    _nezha_day(tmp_path / "nezha", [(20, pods[1]), (23, pods[1])], pods)
    first, second = list(nezha_cases(tmp_path / "nezha", tmp_path / "out"))
    at_first = json.loads((first / "case.json").read_text())["alert"]["starts_at"]
    at_second = json.loads((second / "case.json").read_text())["alert"]["starts_at"]
    assert at_second - at_first == 180
    # the first case's fault window holds the three minutes before the second injection, not five
    assert [t for t in _stamps(first) if t >= at_first] == [at_first, at_first + 60, at_first + 120]
    # the second case's baseline skips the first fault's window (five minutes from its injection)
    base = [t for t in _stamps(second) if t < at_second]
    assert not any(at_first <= t < at_first + 300 for t in base) and len(base) == 10
    label = json.loads((first / "label.json").read_text())
    assert label["component"] == "ts-contacts-service" and label["fault"] == "bad_deploy"
    assert json.loads((first / "case.json").read_text())["alert"]["component"] == NEZHA_ENTRY["trainticket"]
    with (first / "metrics.csv").open(newline="") as handle:
        assert "NodeCpuUsageRate(%)" not in next(csv.reader(handle))  # host columns name no host: dropped
