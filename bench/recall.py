"""Episodic recall benchmark: recall@k of a past episode with the same root cause.

Usage: ``python -m bench recall [--data DATA_ROOT] [--seed N] [--k 1,3,5]``

Incidents are the real Nezha fault injections (MIT; rca_data/*/*fault_list.json: OnlineBoutique
and TrainTicket, 101 cases): root cause = (service, fault type). Their observable symptoms are
made by a small seeded generator (the repository ships telemetry for only a few cases): a
paraphrased signal on the faulty service typical of the fault type, latency/error signals on its
callers, random unrelated alerts, an error log line from construct_data's code-region ground truth
for return/exception faults, and fresh pod hashes and numbers every time, so no two episodes share
text by accident. Leave-one-out: each incident is queried against all the others (recorded through
EpisodicMemory into a real Chroma store); a hit is a top-k episode with the same root cause.
Queries whose root cause occurs only once are not scored.
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


def evaluate(episodes: list[Episode], embedding, ks: list[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/bench.db")
        create_tables(engine)
        mem = EpisodicMemory(engine, chroma_client=chroma_client(path=f"{tmp}/chroma"), embedding=embedding)
        started = time.perf_counter()
        for e in episodes:
            mem.record(e)
        record_s = time.perf_counter() - started
        counts = {}
        for e in episodes:
            counts[e.root_cause] = counts.get(e.root_cause, 0) + 1
        hits = {k: 0 for k in ks}
        scored = 0
        started = time.perf_counter()
        for e in episodes:
            if counts[e.root_cause] < 2:
                continue
            scored += 1
            got = [r.root_cause for r in mem.recall(e, k=max(ks))]
            for k in ks:
                hits[k] += e.root_cause in got[:k]
        query_s = time.perf_counter() - started
        engine.dispose()
    row: dict[str, object] = {"embedding": embedding.name(), "episodes": len(episodes), "scored queries": scored}
    for k in ks:
        row[f"recall@{k}"] = hits[k] / scored if scored else 0.0
    row["record ms/episode"] = round(1000 * record_s / len(episodes), 1)
    row["recall ms/query"] = round(1000 * query_s / max(scored, 1), 1)
    return row


def main(argv: list[str]) -> str:
    parser = argparse.ArgumentParser(prog="python -m bench recall")
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--k", default="1,3,5")
    args = parser.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    cases = load_cases(data_dir(args.data) / "rca" / "nezha")
    services = sorted({c["service"] for c in cases})
    rng = random.Random(args.seed)
    episodes = [make_episode(i, c, services, rng) for i, c in enumerate(cases)]
    rows = []
    if minilm_available():
        from memory.vectors import PackagedMiniLMEmbedding

        rows.append(evaluate(episodes, PackagedMiniLMEmbedding(), ks))
    rows.append(evaluate(episodes, HashingEmbedding(), ks))
    # Chance level: a random ranking of the other episodes.
    chance_rng = random.Random(args.seed + 1)
    chance = {k: 0 for k in ks}
    scored = 0
    for e in episodes:
        others = [o.root_cause for o in episodes if o is not e]
        if e.root_cause not in others:
            continue
        scored += 1
        chance_rng.shuffle(others)
        for k in ks:
            chance[k] += e.root_cause in others[:k]
    rows.append({"embedding": "random ranking", "episodes": len(episodes), "scored queries": scored}
                | {f"recall@{k}": chance[k] / scored for k in ks})  # fmt: skip
    kinds = sorted({e.root_cause for e in episodes})
    return (
        f"{len(episodes)} Nezha fault cases, {len(kinds)} distinct root causes (service:fault type), "
        f"generator seed {args.seed}; leave-one-out over real Chroma + SQLite.\n\n" + markdown_table(rows)
    )
