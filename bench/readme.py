"""README figures written from the results files: ``python -m bench readme [--check]``.

WHY: a figure typed by hand drifts from the run that made it (the README once said 64.7k lines/s
while bench/results/compression.md at the same commit said 48,082). Each row of the README's
"Measured" table whose command cell is a benchmark with a figure function below is rewritten from
``bench/results/<name>.md``; ``--check`` only reports whether the README agrees (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import PROJECT_ROOT, table_after

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
README = PROJECT_ROOT / "README.md"


def _pct(value: str) -> str:
    return f"{float(value) * 100:.1f}%"


def _k(value: float) -> str:
    return f"{value / 1000:.1f}k"


def compression_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the compression row, from bench/results/compression.md."""
    summary = {r["budget"]: r for r in table_after(results, "## Summary over all systems")}
    goal = table_after(results, "## Goal at the 5% budget, per system")
    speed = table_after(results, next(line for line in results.splitlines() if line.startswith("## Throughput")))
    five, ten = summary["5%"], summary["10%"]
    worst_items = min(float(r["critical items kept"]) for r in goal)
    worst_entities = min(float(r["entities kept"]) for r in goal)
    worst_compression = min(float(r["compression"]) for r in goal)
    met = sum(1 for r in goal if r["goal (>=0.90 / >=0.97 / ent >=0.90)"] == "met")
    cpu = [float(r["compressor lines/s (CPU)"]) for r in speed]
    drain_cpu = [float(r["drain3 alone lines/s (CPU)"]) for r in speed]
    rates = [float(r["compressor lines/s"]) for r in speed]
    overall = re.search(r"Overall: (\d+) lines/s", results)
    what = f"context compression ({len(goal)} loghub systems, WordPiece tokens)"
    figure = (
        f"5% budget: {_pct(five['compression (pooled)'])} compression, "
        f"{_pct(five['retention (pooled items)'])} critical items kept (per system: compression >= "
        f"{worst_compression * 100:.1f}%, items >= {worst_items * 100:.1f}%, entities >= "
        f"{worst_entities * 100:.1f}%; goal met on {met}/{len(goal)}); 10%: {_pct(ten['compression (pooled)'])} / "
        f"{_pct(ten['retention (pooled items)'])}; throughput per system (CPU time, shared machine) "
        f"{_k(min(cpu))}-{_k(max(cpu))} lines/s vs drain3 alone {_k(min(drain_cpu))}-{_k(max(drain_cpu))} "
        f"in the same run (wall clock {_k(min(rates))}-{_k(max(rates))}, overall "
        f"{_k(float(overall.group(1)) if overall else 0)})"
    )
    return what, figure


def incidents_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the incident row, from bench/results/incidents.md."""
    summary = {r["responder"]: r for r in table_after(results, "## Task success, wrong actions and MTTR")}
    kinds = table_after(results, next(line for line in results.splitlines() if line.startswith("## Per fault kind")))
    variants = {r["variant"]: r for r in table_after(results, "## Per variant")}
    agents = summary["agents"]
    change = re.search(r"best baseline \(([\w-]+)\): ([+-][\d.]+%)", results)
    base = summary[change.group(1)] if change else agents
    what = f"incident handling ({agents['scenarios']} simulated scenarios, {len(kinds)} fault kinds, cascades)"
    figure = (
        f"task success {_pct(agents['task success'])}, fixed {_pct(agents['fixed'])} "
        f"({change.group(1) if change else '?'}: {_pct(base['fixed'])}); MTTR {change.group(2) if change else '?'} "
        f"vs the best baseline; wrong actions {float(agents['wrong actions / scenario']):.2f}/scenario "
        f"(baseline {float(base['wrong actions / scenario']):.2f}); cascades fixed-and-diagnosed "
        f"{_pct(variants['cascade']['agents success'])}"
    )
    return what, figure


def rca_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the root-cause row, from bench/results/rca.md: held-out splits first."""
    rows = table_after(results, "## Root-cause component top-k and fault type, per data set and regime")
    cell = {(r["group"], r["method"]): r for r in rows}

    def pair(group: str, method: str = "diagnoser") -> str:
        r = cell.get((group, method))
        return f"{float(r['top-1']):.2f} / {float(r['top-3']):.2f}" if r else "-"

    n_nezha = cell.get(("nezha (all)", "diagnoser"), {}).get("cases", "?")
    n_petshop = cell.get(("petshop (all)", "diagnoser"), {}).get("cases", "?")
    seconds = [float(r["s / case"]) for r in rows if r["method"] == "diagnoser" and r.get("s / case")]
    what = f"root-cause localisation ({n_nezha} Nezha + {n_petshop} PetShop real fault cases)"
    figure = (
        f"top-1/3 component, held out: Nezha test days {pair('nezha / test')}, PetShop test "
        f"{pair('petshop / test')} (random walk {pair('nezha / test', 'random-walk')}, "
        f"{pair('petshop / test', 'random-walk')}); all cases: OnlineBoutique {pair('nezha / onlineboutique')}, "
        f"TrainTicket {pair('nezha / trainticket')}, PetShop {pair('petshop (all)')}; "
        f"{min(seconds, default=0):.2f}-{max(seconds, default=0):.2f} s/case"
    )
    return what, figure


def console_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the console row, from bench/results/console.md: p95 per backend."""
    parts, size = [], ""
    incidents = "?"
    for backend in ("postgres", "sqlite"):
        heading = next((line for line in results.splitlines() if line.startswith(f"## {backend}: ")), None)
        if heading is None:
            continue
        incidents = heading.split(": ", 1)[1].split(" incidents", 1)[0]
        rows = {r["page"]: float(r["p95 ms"]) for r in table_after(results, heading)}
        lists = [v for k, v in rows.items() if k.startswith("list")]
        searches = [v for k, v in rows.items() if k.startswith("search")]
        parts.append(f"{backend} p95 list {max(lists):.0f} ms, search {max(searches):.0f} ms, incident page "
                     f"{rows.get('incident page', 0):.0f} ms")
    loads = table_after(results, "## First page load (/incidents + linked CSS/JS)")
    if loads:
        first = loads[0]
        size = (f"; first load {float(first['gzip KB']):.1f} KB gzip ({float(first['raw KB']):.1f} KB raw, "
                f"{first['requests']} requests)")
    what = f"console server time ({incidents} incidents, 100k timeline rows; worst page kind)"
    return what, "; ".join(parts) + " (goal < 200 ms)" + size


def causal_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the causal row, from bench/results/causal.md: Deoxys, gate, semi-synthetic."""
    heading = next(line for line in results.splitlines() if line.startswith("## Simulator:"))
    policies = {r["policy"]: r for r in table_after(results, heading)}
    learned = policies["learned (with fallback, default thresholds)"]
    gate = re.search(r"Gate right on (\d+) of (\d+) case runs", results)
    semi_heading = next((line for line in results.splitlines() if line.startswith("## Semi-synthetic")), None)
    semi = table_after(results, semi_heading) if semi_heading else []
    coverage_key = next((k for k in (semi[0] if semi else {}) if k.startswith("90% coverage served")), None)
    what = "causal node mitigation (simulated fleet, 100k events; semi-synthetic CATE on real covariates)"
    figure = (f"{learned['downtime vs legacy']} VM downtime, {learned['interruptions vs legacy']} interruptions vs "
              f"legacy ({learned['fallback rate']} fallback)")
    if gate:
        figure += f"; refutation gate right on {gate.group(1)}/{gate.group(2)} planted-case runs"
    if semi and coverage_key:
        ratios = [float(r["ratio (goal <= 0.6)"]) for r in semi]
        cover = [float(r[coverage_key]) for r in semi]
        figure += (f"; served estimator sqrt(PEHE) {min(ratios):.2f}-{max(ratios):.2f}x econml's forest defaults, "
                   f"90% intervals cover {min(cover):.2f}-{max(cover):.2f} over {len(semi)} settings")
    return what, figure


def iac_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the IaC row, from bench/results/iac.md."""
    projects = table_after(results, "### Per project")
    total = next(r for r in projects if r["project"] == "ALL")
    speed = table_after(results, "### Throughput")[0]
    cov = next(r for r in table_after(results, "### Coverage of real CloudTrail (data/cloudtrail)")
               if r["corpus"].startswith("ALL"))
    what = f"IaC drift reconciliation ({total['scenarios']} injected drifts, {len(projects) - 1} projects)"
    figure = (
        f"pass@1 {float(total['pass@1']):.2f}, pass@3 {float(total['pass@3']):.2f} on our drift catalog; zero unrelated "
        f"lines in {_pct(total['zero unrelated lines'])} of scenarios; {int(speed['records']):,} records in "
        f"{float(speed['seconds']):.2f} s; real CloudTrail: {int(cov['rule']) + int(cov['no config effect (reasoned)'])}"
        f"/{cov['distinct mutating names']} distinct mutating calls mapped to a rule or a reasoned no-config-effect"
    )
    return what, figure


def _span(values: list[float], fmt: str = "{:.2f}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}-{fmt.format(high)}"


def ingest_row(results: str) -> tuple[str, str]:
    """(what, figure) cells of the ingest rows, from bench/results/ingest.md: integrity first, then the
    project's own capacity, then the same against the bare app (both server-bound: the client's CPU is shown)."""
    intro = next(line for line in results.splitlines() if " posts per run at concurrency " in line)
    runs = table_after(results, intro)
    ratios = table_after(results, "## Against the bare app")
    project = [r for r in runs if r["app"] == "project"]
    bare = [r for r in runs if r["app"] == "bare FastAPI"]
    lost = sum(int(r["lost"]) for r in project)
    duplicated = sum(int(r["duplicated"]) for r in project)
    refused = sum(r["non-202"] != "0" for r in project)
    by_batch = {b: [r for r in ratios if r["alerts/post"] == b] for b in ("1", "10")}
    rate = {(r["backend"], r["alerts/post"]): float(r["alerts/s"]) for r in ratios}
    load = re.search(r"\((\d+) CPUs, shared with other jobs\): load average \(1 min\) at the start and after each "
                     r"backend: ([0-9., ]+)\.", results)
    posts, concurrency = intro.split(" posts per run at concurrency ")[0], intro.split("concurrency ")[1].split(";")[0]
    what = (f"alert ingest vs a bare FastAPI app ({int(posts):,} posts per run, concurrency {concurrency}, single "
            "alerts and batches of 10, SQLite and PostgreSQL + Redis)")
    client = [float(r["client CPU ms/req"]) for r in runs if r.get("client CPU ms/req")]
    figure = (f"{lost} lost, {duplicated} duplicated, non-202 in {refused} of {len(project)} runs; "
              f"{rate.get(('sqlite', '1'), 0):,.0f} / {rate.get(('postgres+redis', '1'), 0):,.0f} single-alert posts/s "
              f"(SQLite / PostgreSQL), {rate.get(('sqlite', '10'), 0):,.0f} / "
              f"{rate.get(('postgres+redis', '10'), 0):,.0f} alerts/s in batches of 10; /healthz p99 "
              f"{_span([float(r['healthz p99 ms']) for r in project], '{:.0f}')} ms (bare "
              f"{_span([float(r['healthz p99 ms']) for r in bare], '{:.0f}')} ms); API CPU "
              f"{_span([float(r['API CPU ms/req']) for r in project], '{:.1f}')} ms/post vs "
              f"{_span([float(r['API CPU ms/req']) for r in bare], '{:.2f}')} ms for the bare app, whose "
              f"throughput it reaches {_span([float(r['throughput vs bare']) for r in by_batch['1']])}x with single "
              f"alerts and {_span([float(r['throughput vs bare']) for r in by_batch['10']])}x with batches "
              f"(p99 {_span([float(r['p99 vs bare']) for r in ratios], '{:.1f}')}x)")
    if ratios and "throughput vs bare durable" in ratios[0]:
        figure += (f"; against a bare app that commits each post before its 202: "
                   f"{_span([float(r['throughput vs bare durable']) for r in by_batch['1']])}x single, "
                   f"{_span([float(r['throughput vs bare durable']) for r in by_batch['10']])}x batches "
                   f"(p99 {_span([float(r['p99 vs bare durable']) for r in ratios])}x)")
    if client:
        figure += f"; load client {_span(client)} ms CPU/post"
    if load:
        figure += f"; load average {load.group(2).strip()} on {load.group(1)} shared CPUs"
    return what, figure


FIGURES: dict[str, Callable[[str], tuple[str, str]]] = {"compression": compression_row, "incidents": incidents_row,
                                                        "rca": rca_row, "console": console_row, "causal": causal_row,
                                                        "iac": iac_row, "ingest": ingest_row}


def render(readme: str, results_dir: Path) -> str:
    """``readme`` with every figure row rewritten from ``results_dir``."""
    out = []
    for line in readme.splitlines(keepends=True):
        m = re.match(r"\| [^|]* \| `python -m bench (\w+)( [^`]*)?` \| [^\n]*\|\n?$", line)
        if m and m.group(1) in FIGURES and (results_dir / f"{m.group(1)}.md").exists():
            results = (results_dir / f"{m.group(1)}.md").read_text()
            what, figure = FIGURES[m.group(1)](results)
            end = "\n" if line.endswith("\n") else ""
            command = f"python -m bench {m.group(1)}"
            if m.group(2):  # a row that quotes the arguments quotes those of the run that made the figure
                ran = re.search(r"^Command: `(python -m bench [^`]*)`", results, re.MULTILINE)
                command = ran.group(1) if ran else command
            line = f"| {what} | `{command}` | {figure} |{end}"
        out.append(line)
    return "".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench readme")
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md disagrees with the results")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)")
    parser.add_argument("--readme", type=Path, default=README, help="README to rewrite (default: the project's)")
    args = parser.parse_args(argv)
    current = args.readme.read_text()
    wanted = render(current, args.results)
    if args.check:
        if wanted != current:
            print(f"{args.readme} figures differ from {args.results}; run: python -m bench readme", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(wanted)
    print(f"{args.readme} figures " + ("unchanged" if wanted == current else "rewritten") + f" from {args.results}")
    return 0
