"""Episodic recall benchmark: recall@k of a past episode with the same root cause.

Usage: ``python -m bench recall [--data DATA_ROOT] [--seed N] [--k 1,3,5] [--symptoms observed|legacy]
[--embedding all|minilm|hashing]``

Incidents are the real Nezha fault injections (MIT; rca_data/*/*fault_list.json: OnlineBoutique
and TrainTicket, 101 cases): root cause = (service, fault type). The repository ships telemetry for
only a few minutes, so the observable symptoms are made by a seeded generator.

``observed`` (default) builds each episode exactly as services/episodes/service.py records it:
title and signals from an alert (name + summary), compressed_context = the real
``memory.compressor`` over the alert header, the alerting pod's logs (real Nezha log messages of that
service with fresh trace ids and timestamps) and its metric series (Nezha metric names). Realism
choices: the alert fires on a caller 35% of the time (then the faulty service is visible only in
caller warnings, when there are any); alert kinds overlap between fault types; a ``return`` fault
shows as the disappearance of its closing log line; unrelated warnings and metric shifts are mixed
in; 15% of incidents end unresolved and are stored without a root cause (as the platform does).
The fault type is never written into the text (checked: "Query texts naming the label").
``legacy`` is the first generator (paraphrased one-line symptoms per fault type, kept for comparison).

Leave-one-out: every episode is queried against all others (recorded through EpisodicMemory into a
real Chroma store + SQLite); a hit is a top-k episode whose stored root cause equals the query's
true label. Queries whose label no other resolved episode carries are not scored. Variants: the
previous behaviour (raw symptom text, dense only) and salient text with dense, lexical (BM25) and
hybrid (RRF) ranking, with and without preferring resolved episodes.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import data_dir, markdown_table
from memory.episodic import Episode, EpisodicMemory
from memory.models import create_tables
from memory.vectors import HashingEmbedding, chroma_client, minilm_available

SYMPTOMS = {
    "cpu_contention": [
        "CPU throttling on {svc}: usage {n}% of limit",
        "{svc} CpuUsageRate above {n}% for 3m",
        "High CPU saturation in {svc} container",
    ],
    "cpu_consumed": [
        "{svc} process burning CPU, usage {n}%",
        "CPU hog detected in {svc}: {n}% busy",
        "{svc} CPU usage rate spiked to {n}%",
    ],
    "network_delay": [
        "Network P90 latency of {svc} at {n}ms",
        "Slow network round trips to {svc} ({n}ms)",
        "{svc} responses delayed, TCP RTT {n}ms",
    ],
    "return": [
        "{svc} returns wrong/empty results for {n} requests",
        "Unexpected return values from {svc} handler",
        "{svc} business check failing, {n} bad responses",
    ],
    "exception": [
        "{svc} throwing exceptions, {n} errors/min",
        "Unhandled exception rate up in {svc}",
        "{svc} 5xx due to exception in request path ({n}/min)",
    ],
}
CALLER = ["p90 latency up on {svc} ({n}ms)", "{svc} success rate dropped to {n}%", "timeouts seen by {svc}"]
NOISE = [
    "disk usage {n}% on node-{m}",
    "pod {svc} restarted {m} times",
    "memory usage {n}% on {svc}",
    "certificate for {svc} expires in {m} days",
]
OB_CALLERS = {
    "frontend": [],
    "checkoutservice": ["frontend"],
    "cartservice": ["frontend", "checkoutservice"],
    "productcatalogservice": ["frontend", "checkoutservice", "recommendationservice"],
    "currencyservice": ["frontend", "checkoutservice"],
    "paymentservice": ["checkoutservice"],
    "shippingservice": ["frontend", "checkoutservice"],
    "emailservice": ["checkoutservice"],
    "recommendationservice": ["frontend"],
    "adservice": ["frontend"],
}


def load_cases(root: Path) -> list[dict]:
    code_regions = {}
    for f in (root / "construct_data").glob("root_cause_*.json"):
        code_regions.update(json.loads(f.read_text()))
    cases = []
    for f in sorted((root / "rca_data").glob("*/*fault_list.json")):
        for group in json.loads(f.read_text()).values():
            for c in group:
                svc = c["inject_pod"].rsplit("-", 2)[0]
                cases.append({"service": svc, "fault": c["inject_type"], "time": c["inject_time"],
                              "region": code_regions.get(svc, {}).get(c["inject_type"], "")})  # fmt: skip
    return cases


def make_episode(i: int, case: dict, services: list[str], rng: random.Random) -> Episode:
    svc, fault = case["service"], case["fault"]
    pod = f"{svc}-{rng.getrandbits(36):09x}-{rng.getrandbits(20):05x}"
    signals = [rng.choice(SYMPTOMS[fault]).format(svc=pod, n=rng.randint(60, 990))]
    callers = OB_CALLERS.get(svc, ["ts-ui-dashboard", "ts-gateway-service"] if svc.startswith("ts-") else [])
    for caller in rng.sample(callers, k=min(len(callers), rng.randint(0, 2))):
        signals.append(rng.choice(CALLER).format(svc=caller, n=rng.randint(20, 3000)))
    for _ in range(rng.randint(0, 2)):
        signals.append(rng.choice(NOISE).format(svc=rng.choice(services), n=rng.randint(70, 99), m=rng.randint(1, 9)))
    rng.shuffle(signals)
    context = ""
    if fault in {"return", "exception"} and case["region"]:
        where = rng.choice(case["region"].split("_"))
        level = "ERROR" if fault == "exception" else "WARN"
        context = f"x{rng.randint(2, 90)} {level} {where} TraceID: {rng.getrandbits(128):032x} in {pod}"
    return Episode(
        incident_id=f"case-{i}",
        title=f"incident at {case['time']}",
        signals=signals,
        compressed_context=context,
        root_cause=f"{svc}:{fault}",
        actions=[{"action": "restart", "target": pod, "succeeded": True}],
        outcome="resolved",
        time_to_recover_s=float(rng.randint(60, 1800)),
    )


# --- observed symptoms: what the platform's observer would actually store --------------------------
# An episode as recorded by services/episodes/service.py: title, signals = [alert name, alert
# summary], compressed_context = memory.compressor over the alert header + the target's logs (+ its
# metric series). The alert may fire on a caller (symptoms propagate), alert kinds overlap between
# fault types (latency fires for CPU and network faults), background logs are real Nezha lines of
# the alerting service with fresh ids, and unrelated warnings/metric shifts are mixed in. The fault
# type is never written; it shows only through which metrics moved and which lines appear.
METRIC_BASE = {  # Nezha metric columns -> (mean, sd) of a healthy pod
    "CpuUsageRate(%)": (12.0, 1.5), "MemoryUsageRate(%)": (30.0, 1.0), "PodServerLatencyP90(s)": (0.02, 0.002),
    "PodClientLatencyP90(s)": (0.03, 0.003), "PodSuccessRate(%)": (99.5, 0.2), "PodWorkload(Ops)": (9.0, 0.6),
    "NodeCpuUsageRate(%)": (25.0, 1.5), "NetworkTransmitBytes": (50000.0, 3000.0),
}  # fmt: skip
# fault -> [(metric, factor, probability)] on the faulty pod, and on a caller
FAULT_METRICS = {
    "cpu_contention": [("CpuUsageRate(%)", 5.0, 0.9), ("NodeCpuUsageRate(%)", 2.0, 0.5), ("PodServerLatencyP90(s)", 4.0, 0.5)],
    "cpu_consumed": [("CpuUsageRate(%)", 5.0, 0.9), ("PodServerLatencyP90(s)", 3.0, 0.4), ("PodWorkload(Ops)", 0.6, 0.3)],
    "network_delay": [("PodServerLatencyP90(s)", 20.0, 0.9), ("NetworkTransmitBytes", 0.5, 0.4), ("PodWorkload(Ops)", 0.6, 0.3)],
    "exception": [("PodSuccessRate(%)", 0.7, 0.7), ("PodServerLatencyP90(s)", 2.0, 0.2)],
    "return": [("PodSuccessRate(%)", 0.8, 0.4), ("PodWorkload(Ops)", 1.3, 0.3)],
}  # fmt: skip
CALLER_METRICS = {
    "cpu_contention": [("PodClientLatencyP90(s)", 4.0, 0.6)], "cpu_consumed": [("PodClientLatencyP90(s)", 3.0, 0.6)],
    "network_delay": [("PodClientLatencyP90(s)", 15.0, 0.9)], "exception": [("PodSuccessRate(%)", 0.8, 0.6)],
    "return": [("PodSuccessRate(%)", 0.9, 0.3)],
}  # fmt: skip
ALERTS = {  # what a Prometheus-style rule set fires, per fault, on the faulty pod / on a caller
    "cpu_contention": (["PodCpuUsageHigh", "PodLatencyP90High"], ["PodLatencyP90High"]),
    "cpu_consumed": (["PodCpuUsageHigh", "PodLatencyP90High"], ["PodLatencyP90High"]),
    "network_delay": (["PodLatencyP90High"], ["PodLatencyP90High", "PodSuccessRateLow"]),
    "exception": (["ErrorLogRateHigh", "PodSuccessRateLow"], ["PodSuccessRateLow", "ErrorLogRateHigh"]),
    "return": (["PodSuccessRateLow", "ErrorLogRateHigh"], ["PodSuccessRateLow"]),
}
ALERT_METRIC = {"PodCpuUsageHigh": "CpuUsageRate(%)", "PodLatencyP90High": "PodServerLatencyP90(s)",
                "PodSuccessRateLow": "PodSuccessRate(%)", "ErrorLogRateHigh": "error log lines/min"}  # fmt: skip
NOISE_LINES = [
    "WARN GC pause of {n}ms exceeded target",
    "WARN connection pool near capacity ({n} in use), waiting",
    "WARN slow DNS lookup for {svc} took {n}ms",
    "ERROR failed to export spans to collector: connection refused",
]
EXCEPTIONS = {"java": ["java.lang.RuntimeException", "java.lang.NullPointerException", "java.lang.IllegalStateException"],
              "other": ["rpc error: code = Internal desc = injected exception", "Error: unexpected exception",
                        "panic: runtime error"]}  # fmt: skip


def load_log_corpus(root: Path) -> dict[str, list[str]]:
    """Real Nezha log messages per service (ids/timestamps re-generated per episode later)."""
    import csv

    corpus: dict[str, list[str]] = {}
    for f in sorted((root / "rca_data").glob("*/log/*_log.csv")):
        with f.open(newline="") as fh:
            for row in csv.DictReader(fh):
                svc = row["PodName"].rsplit("-", 2)[0]
                try:
                    inner = json.loads(row["Log"])["log"].strip()
                    msg = json.loads(inner).get("message", inner) if inner.startswith("{") else inner
                except (ValueError, KeyError, AttributeError):
                    continue
                corpus.setdefault(svc, []).append(str(msg))
    return corpus


def _series(rng: random.Random, metric: str, factor: float | None, n: int = 30, onset: int = 22) -> list[float]:
    mean, sd = METRIC_BASE[metric]
    after = mean * factor if factor else mean
    return [rng.gauss(after if factor and i >= onset else mean, sd) for i in range(n)]


def _fresh_ids(msg: str, rng: random.Random) -> str:
    """Replace the trace/span ids and numbers of a real line by fresh ones (as a new incident would have)."""
    import re

    msg = re.sub(r"\b[0-9a-f]{32}\b", lambda _: f"{rng.getrandbits(128):032x}", msg)
    msg = re.sub(r"\b[0-9a-f]{16}\b", lambda _: f"{rng.getrandbits(64):016x}", msg)
    return msg


def make_observed_episode(i: int, case: dict, corpus: dict[str, list[str]], rng: random.Random) -> Episode:
    from memory.compressor import ContextCompressor

    svc, fault = case["service"], case["fault"]
    java = svc.startswith("ts-")
    callers = OB_CALLERS.get(svc, ["ts-ui-dashboard", "ts-gateway-service"] if java else [])
    on_caller = bool(callers) and rng.random() < 0.35
    target = rng.choice(callers) if on_caller else svc
    pod = f"{target}-{rng.getrandbits(36):09x}-{rng.getrandbits(20):05x}"
    alert = rng.choice(ALERTS[fault][1 if on_caller else 0])
    metric = ALERT_METRIC[alert]
    value = {"PodCpuUsageHigh": rng.randint(75, 99), "PodLatencyP90High": round(rng.uniform(0.3, 5.0), 2),
             "PodSuccessRateLow": rng.randint(40, 95), "ErrorLogRateHigh": rng.randint(10, 400)}[alert]  # fmt: skip
    summary = f"{metric} of {pod} is {value}"
    header = f"alert {alert} severity={rng.choice(['warning', 'critical'])} on {pod}: {summary}"
    minute, day = rng.randint(0, 50), rng.randint(1, 28)
    stamp = lambda s: f"2024-05-{day:02d}T10:{minute + s // 60:02d}:{s % 60:02d}.{rng.randint(0, 999):03d}Z"  # noqa: E731
    lines = [header]
    background = corpus.get(target, [])
    region = case["region"].split("_") if case["region"] else []
    for s in sorted(rng.randint(0, 599) for _ in range(rng.randint(30, 120)) if background):
        msg = _fresh_ids(rng.choice(background), rng)
        if fault == "return" and not on_caller and len(region) == 2 and region[1] and region[1] in msg:
            continue  # a 'return' fault skips the code after its first log: the closing line disappears
        lines.append(f"{stamp(s)} INFO {msg}")
    trace = lambda: f"TraceID: {rng.getrandbits(128):032x} SpanID: {rng.getrandbits(64):016x}"  # noqa: E731
    if fault == "exception":
        exc = rng.choice(EXCEPTIONS["java" if java else "other"])
        for s in sorted(rng.randint(300, 599) for _ in range(rng.randint(3, 40))):
            if on_caller:
                lines.append(f"{stamp(s)} ERROR {trace()} call to {svc} failed: status 500 {exc}")
            else:
                where = region[-1] if region else "request handler"
                lines.append(f"{stamp(s)} ERROR {trace()} {where} failed: {exc}")
    elif fault == "return" and on_caller and rng.random() < 0.6:
        for s in sorted(rng.randint(300, 599) for _ in range(rng.randint(2, 20))):
            lines.append(f"{stamp(s)} WARN {trace()} empty or incomplete response from {svc}")
    elif fault in {"network_delay", "cpu_contention", "cpu_consumed"} and on_caller and rng.random() < 0.5:
        for s in sorted(rng.randint(300, 599) for _ in range(rng.randint(2, 20))):
            lines.append(f"{stamp(s)} WARN {trace()} request to {svc} failed: context deadline exceeded")
    for _ in range(rng.randint(0, 2)):
        if rng.random() < 0.5:
            noise = rng.choice(NOISE_LINES).format(n=rng.randint(50, 900), svc=rng.choice(list(OB_CALLERS)))
            lines.append(f"{stamp(rng.randint(0, 599))} {noise}")
    comp = ContextCompressor(budget_tokens=600)
    comp.fold(lines)
    shifts = {m: f for m, f, p in (CALLER_METRICS if on_caller else FAULT_METRICS)[fault] if rng.random() < p}
    if rng.random() < 0.25:  # an unrelated metric moving at the same time
        shifts.setdefault(rng.choice(["MemoryUsageRate(%)", "NetworkTransmitBytes", "PodWorkload(Ops)"]), 1.4)
    for m in METRIC_BASE:
        comp.fold_metrics(f"{pod} {m}", _series(rng, m, shifts.get(m)))
    resolved = rng.random() < 0.85
    return Episode(
        incident_id=f"case-{i}",
        title=f"{alert} on {target}",
        signals=[alert, summary],
        compressed_context=comp.render(),
        # The platform stores a root cause only for recovered incidents (services/episodes/service.py).
        root_cause=f"{svc}:{fault}" if resolved else "",
        actions=[{"action": "restart", "target": pod, "succeeded": resolved}],
        outcome="resolved" if resolved else "failed",
        time_to_recover_s=float(rng.randint(60, 1800)),
    )


def leaks(episode: Episode, label: str) -> bool:
    """Does the query text name the label (``svc:fault``) or a fault type (``cpu_contention``...)?"""
    text = episode.symptom_text(max_chars=100_000).lower()
    return label.lower() in text or any(f in text for f in ("cpu_contention", "cpu_consumed", "network_delay"))


VARIANTS = [  # (name, salient documents, ranking, prefer resolved)
    ("raw text, dense (before)", False, "dense", False),
    ("salient, dense", True, "dense", False),
    ("salient, lexical BM25", True, "lexical", False),
    ("salient, hybrid RRF", True, "hybrid", False),
    ("salient, hybrid RRF + prefer resolved", True, "hybrid", True),
]


def evaluate(episodes: list[Episode], labels: list[str], embedding, ks: list[int]) -> list[dict[str, object]]:
    """Leave-one-out: every episode whose true label another *resolved* episode carries is a query."""
    stored = {}
    for e in episodes:
        if e.root_cause:
            stored[e.root_cause] = stored.get(e.root_cause, 0) + 1
    queries = [(e, lab) for e, lab in zip(episodes, labels, strict=True)
               if stored.get(lab, 0) - (1 if e.root_cause == lab else 0) > 0]  # fmt: skip
    rows = []
    for salient in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            engine = sa.create_engine(f"sqlite:///{tmp}/bench.db")
            create_tables(engine)
            mem = EpisodicMemory(engine, chroma_client=chroma_client(path=f"{tmp}/chroma"), embedding=embedding,
                                 salient=salient)  # fmt: skip
            started = time.perf_counter()
            for e in episodes:
                mem.record(e)
            record_ms = 1000 * (time.perf_counter() - started) / len(episodes)
            for name, v_salient, ranking, prefer in VARIANTS:
                if v_salient != salient:
                    continue
                mem.ranking, mem.prefer_resolved = ranking, prefer
                hits = {k: 0 for k in ks}
                started = time.perf_counter()
                for e, label in queries:
                    got = [r.root_cause for r in mem.recall(e, k=max(ks))]
                    for k in ks:
                        hits[k] += label in got[:k]
                query_ms = 1000 * (time.perf_counter() - started) / max(len(queries), 1)
                row: dict[str, object] = {"variant": name, "embedding": embedding.name(), "queries": len(queries)}
                row |= {f"recall@{k}": hits[k] / max(len(queries), 1) for k in ks}
                row |= {"record ms/episode": round(record_ms, 1), "recall ms/query": round(query_ms, 1)}
                rows.append(row)
            engine.dispose()
    return rows


def chance(episodes: list[Episode], labels: list[str], ks: list[int], seed: int, rounds: int = 200) -> dict[str, object]:
    """Expected recall@k of a random ranking of the other episodes (averaged over ``rounds`` shuffles)."""
    rng = random.Random(seed)
    hits = {k: 0 for k in ks}
    scored = 0
    for _ in range(rounds):
        for e, label in zip(episodes, labels, strict=True):
            others = [o.root_cause for o in episodes if o is not e]
            if label not in others:
                continue
            scored += 1
            rng.shuffle(others)
            for k in ks:
                hits[k] += label in others[:k]
    return {"variant": "random ranking", "embedding": "-", "queries": scored // rounds} | {
        f"recall@{k}": hits[k] / max(scored, 1) for k in ks
    }


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench recall")
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--k", default="1,3,5")
    parser.add_argument("--symptoms", choices=["observed", "legacy"], default="observed",
                        help="observed: alert + compressed context as the observer stores it; legacy: v1 generator")
    parser.add_argument("--embedding", choices=["all", "minilm", "hashing"], default="all")
    args = parser.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    root = data_dir(args.data) / "rca" / "nezha"
    cases = load_cases(root)
    rng = random.Random(args.seed)
    if args.symptoms == "observed":
        corpus = load_log_corpus(root)
        episodes = [make_observed_episode(i, c, corpus, rng) for i, c in enumerate(cases)]
    else:
        services = sorted({c["service"] for c in cases})
        episodes = [make_episode(i, c, services, rng) for i, c in enumerate(cases)]
    labels = [f"{c['service']}:{c['fault']}" for c in cases]
    leaked = sum(leaks(e, lab) for e, lab in zip(episodes, labels, strict=True))
    embeddings = []
    if args.embedding in {"all", "minilm"} and minilm_available():
        from memory.vectors import PackagedMiniLMEmbedding

        embeddings.append(PackagedMiniLMEmbedding())
    if args.embedding in {"all", "hashing"}:
        embeddings.append(HashingEmbedding())
    rows = []
    for ef in embeddings:
        rows.extend(r for r in evaluate(episodes, labels, ef, ks)
                    if not (r["variant"] == "salient, lexical BM25" and ef is not embeddings[0]))  # fmt: skip
    rows.append(chance(episodes, labels, ks, args.seed + 1))
    kinds = sorted(set(labels))
    unresolved = sum(1 for e in episodes if not e.root_cause)
    example = episodes[0]
    return (
        f"{len(episodes)} Nezha fault cases, {len(kinds)} distinct root causes (service:fault type), "
        f"symptoms `{args.symptoms}`, generator seed {args.seed}; {unresolved} episodes unresolved (stored without "
        f"root cause); leave-one-out over real Chroma + SQLite. Query texts naming the label: {leaked}.\n\n"
        + markdown_table(rows)
        + "\nLexical BM25 does not use the embedding (shown once). Example stored episode (symptom text, then the "
        "salient text that is embedded/indexed):\n\n```\n" + example.symptom_text() + "\n```\n\n```\n"
        + example.salient_text() + "\n```\n"
    )
