"""Fault log lines phrased differently from the catalog, with a held-out wording for reported runs.

Why: a diagnoser tuned on the simulator's own signature lines (``sim.faults``) may only be matching
those strings. A paraphrased scenario replaces every signature line of its fault with lines that
say the same thing in other words. Two disjoint wordings exist: ``tune`` (used on the tuning seed
set) and ``held_out`` (used on every other seed set). The held-out words appear nowhere in the
platform's matching vocabulary (string literals of ``agents/`` and ``memory/``, the catalog's
signatures, the tune wording); ``tests/sim/test_sim_paraphrase.py`` checks that, so adding one of
these words to a keyword list fails a test instead of silently fitting the report.

A frame is one meaning (``"the drive rejected a write"``) with slots; each slot has a few synonyms
per wording, drawn per line, so one fault produces many surface forms. Lines keep the stream
layout of the catalog: ``{svc}[{n}]: ...`` for a process, ``kernel: ...`` for the kernel, so they
land in the same service and node streams as the originals.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Literal

Wording = Literal["tune", "held_out"]
WORDINGS: tuple[Wording, ...] = ("tune", "held_out")

# slot -> (tune synonyms, held-out synonyms)
SLOTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # severity tags of a process line
    "sev_hi": (("ERROR", "ERR"), ("SEV1", "SEV2")),
    "sev_lo": (("WARN", "WARNING"), ("SEV3", "SEV4")),
    # disk
    "media": (("disk", "drive"), ("platter", "flash cells")),
    "rejected": (("failed", "could not complete"), ("bounced", "spurned")),
    "persist": (("write", "flush"), ("fsync", "journal sync")),
    "defect": (("bad sector", "media error"), ("irreparable platter defect", "damaged flash cells")),
    "outstanding": (("timed out after", "stuck for"), ("dangling for", "parked for")),
    # hang
    "cpu_stuck": (("CPU stuck", "core locked up"), ("execution unit spinning in place", "execution unit jammed")),
    "no_progress": (("blocked for more than", "hung for"), ("made no progress in", "frozen for")),
    "sched_stall": (("scheduler stall", "rcu stall"), ("grace period overdue", "quiescence overdue")),
    # partition
    "unreachable": (("no route to host", "host unreachable"), ("remote disappeared", "gateway gone dark")),
    "link_down": (("link down", "lost carrier"), ("cable dark", "cable unplugged")),
    "peer_silent": (("connect timeout to", "cannot reach"), ("silence from", "no replies from")),
    # memory leak (service)
    "heap_full": (("heap almost full", "heap at its limit"), ("object arena brimming", "allocator arena brimming")),
    "collector": (("garbage collector", "GC"), ("sweeper", "scavenger")),
    "grows": (("keeps growing", "grows without bound"), ("climbs each minute", "swells steadily")),
    "footprint": (("memory usage", "RSS"), ("footprint", "private footprint")),
    "oom_kill": (("out of memory, killed", "OOM killed"), ("reaped for exceeding its allowance", "terminated over its allowance")),
    # deploy / config
    "npe": (("null pointer dereference", "nil dereference"), ("missing field accessed", "vacant field accessed")),
    "http_fault": (("500 Internal Server Error", "HTTP 500"), ("replied five hundred", "served a five hundred reply")),
    "rolled": (("rolled out", "deployed"), ("shipped", "landed fleetwide")),
    "build": (("release", "version"), ("build", "artifact")),
    "bad_setting": (("invalid config value", "bad config key"), ("parameter unparsable", "parameter nonsensical")),
    "settings": (("config", "configuration"), ("settings bundle", "parameter bundle")),
    "pushed": (("applied", "pushed"), ("enforced", "put into force")),
    # cpu / traffic / connection leak (service)
    "workers_busy": (("worker pool exhausted", "all workers busy"), ("every servant occupied", "no vacant servant")),
    "backlog": (("requests queued", "queue growing"), ("jobs piled up", "arrivals parked")),
    "slow_call": (("slow request", "request took too long"), ("sluggish reply", "tardy reply")),
    "surge": (("request rate spike", "traffic spike"), ("arrivals jumped", "arrivals tripled")),
    "shed": (("throttling clients", "rate limiting clients"), ("turning arrivals away", "bouncing excess arrivals")),
    "descriptors": (("too many open files", "file descriptor limit reached"), ("fd quota hit", "fd quota maxed")),
    "borrowed": (("connection not returned to pool", "pool connection leaked"), ("leased conduit kept", "leased conduit withheld")),
    # node memory pressure
    "reclaim": (("page reclaim stalling", "memory reclaim slow"), ("scanner grinding", "scanner thrashing")),
    "low_ram": (("low memory", "memory pressure"), ("RAM nearly gone", "scarce RAM")),
    # nic
    "ring_drops": (("RX ring dropped packets", "packets dropped"), ("ingress frames discarded", "ingress frames binned")),
    "resend": (("TCP retransmits", "retransmissions"), ("repeat deliveries", "duplicated deliveries")),
    # steal
    "steal": (("CPU steal high", "stolen CPU time"), ("hypervisor siphoned cycles", "guest VMs siphoned cycles")),
    "halted": (("pause", "stop-the-world pause"), ("froze mutators", "mutators frozen")),
    "clock_jump": (("clocksource unstable", "timer interrupt late"), ("tick arrived tardy", "tick skew")),
}

# fault kind -> frames: (stream, template). ``{svc}`` and numbers are filled like the catalog's lines. Besides
# slots, a frame holds only a stream tag (``kernel:``, ``{svc}[{n}]:``), numbers, device names and function words,
# so everything that carries meaning comes from the wording.
FRAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "disk_failure": (
        ("kernel", "kernel: sdq: {media} {rejected} the {persist} at offset {n}"),
        ("kernel", "kernel: sdq: {defect} near offset {n}"),
        ("process", "{svc}[{n}]: {sev_hi} {persist} {outstanding} {k}s"),
    ),
    "kernel_hang": (
        ("kernel", "kernel: {cpu_stuck} #{k} for {k}0s"),
        ("kernel", "kernel: jbd2/{k}:{n4} {no_progress} {k}20s"),
        ("kernel", "kernel: {sched_stall} #{k}"),
    ),
    "network_partition": (
        ("process", "{svc}[{n}]: {sev_hi} 10.0.{k}.{n4}:5432 {unreachable}"),
        ("kernel", "kernel: enp3s0: {link_down}"),
        ("process", "{svc}[{n}]: {sev_hi} {peer_silent} 10.0.{k}.{n4}:8080 in {k}000ms"),
    ),
    "memory_leak": (
        ("process", "{svc}[{n}]: {sev_lo} {heap_full} after a {collector} cycle ({k}{n4}MB)"),
        ("process", "{svc}[{n}]: {sev_lo} {footprint} {grows}: {n}kB"),
        ("kernel", "kernel: {svc} ({n}) {oom_kill}"),
    ),
    "bad_deploy": (
        ("process", "{svc}[{n}]: {sev_hi} {npe} at L{k}{n4} ({build} {release})"),
        ("process", "{svc}[{n}]: {sev_hi} {http_fault} {k}ms ({build} {release})"),
        ("kernel", "shipit[{n}]: {svc} {build} {release} {rolled}"),
    ),
    "cpu_saturation": (
        ("process", "{svc}[{n}]: {sev_lo} {workers_busy}, {k}{n4} {backlog}"),
        ("process", "{svc}[{n}]: {sev_lo} {slow_call} in {k}{n4}ms"),
    ),
    "node_memory_pressure": (
        ("kernel", "kernel: {reclaim} for {n}ms"),
        ("kernel", "kernel: {low_ram}: {svc} ({n}) {oom_kill}"),
    ),
    "nic_degradation": (
        ("kernel", "kernel: enp3s0: {ring_drops} #{k} ({n})"),
        ("process", "{svc}[{n}]: {sev_lo} {resend} to 10.0.{k}.{n4}:8080 at {k}.{n4}%"),
    ),
    "cpu_steal": (
        ("kernel", "kernel: {clock_jump} #{k} by {n} ns"),
        ("kernel", "kvmclock[{n}]: {steal} #{k}"),
        ("process", "{svc}[{n}]: {sev_lo} {collector} {halted} {k}{n4}ms ({steal})"),
    ),
    "traffic_surge": (
        ("process", "{svc}[{n}]: {sev_lo} {surge}: {n}/s"),
        ("process", "{svc}[{n}]: {sev_lo} {shed}: {k}{n4} in 10s"),
        ("process", "{svc}[{n}]: {sev_lo} {backlog}: {n4}"),
    ),
    "bad_config": (
        ("process", '{svc}[{n}]: {sev_hi} {bad_setting}: "{k}s"'),
        ("kernel", "cfgsync[{n}]: {settings} r{n4} {pushed} on {svc}"),
        ("process", "{svc}[{n}]: {sev_hi} {http_fault} {k}ms ({settings} r{n4})"),
    ),
    "connection_leak": (
        ("process", "{svc}[{n}]: {sev_hi} {descriptors}; {k}ms"),
        ("process", "{svc}[{n}]: {sev_lo} {borrowed} 10.0.{k}.{n4}:5432 ({k}{n4}s)"),
    ),
}
_SLOT = re.compile(r"\{([a-z_]+)\}")
_TAG = re.compile(r"^[\w{}]+(\[\{n\}\])?:\s")  # the stream tag: ``kernel:``, ``{svc}[{n}]:`` (a program name, not wording)
_FILLED_LATER = {"svc", "n", "n4", "k", "hex", "release", "node"}


def templates(kind: str, *, wording: Wording, seed: int | str, count: int = 8) -> list[str]:
    """``count`` paraphrased signature templates of ``kind`` in ``wording`` (numbers and ``{svc}`` still open).

    Deterministic in (kind, wording, seed); slots are filled here, the catalog's placeholders are left
    for the telemetry to fill per line exactly as it fills the catalog's own signatures.
    """
    return list(_templates(kind, wording, seed, count))


@functools.lru_cache(maxsize=4096)
def _templates(kind: str, wording: Wording, seed: int | str, count: int) -> tuple[str, ...]:
    if wording not in WORDINGS:
        raise ValueError(f"unknown wording {wording!r}; choose from {WORDINGS}")
    frames = FRAMES[kind]
    side = WORDINGS.index(wording)
    rng = random.Random(f"paraphrase|{kind}|{wording}|{seed}")
    out: list[str] = []
    for i in range(count):
        _stream, frame = frames[i % len(frames)]

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return match.group(0) if name in _FILLED_LATER else rng.choice(SLOTS[name][side])

        out.append(_SLOT.sub(fill, frame))
    return tuple(out)


def slot_words(wording: Wording) -> set[str]:
    """The words (3+ letters, lower case) of a wording's slot synonyms: what differs between the wordings."""
    side = WORDINGS.index(wording)
    return {w for pair in SLOTS.values() for phrase in pair[side] for w in re.findall(r"[a-z]{3,}", phrase.lower())}


def frame_words() -> set[str]:
    """The words of the frames outside their slots and stream tags (device names, units): shared by both wordings."""
    return {w for frames in FRAMES.values() for _stream, frame in frames
            for w in re.findall(r"[a-z]{3,}", _SLOT.sub(" ", _TAG.sub("", frame)).lower())}


def vocabulary(wording: Wording) -> set[str]:
    """Every word (3+ letters, lower case) a wording can put into a line: its slot synonyms and the frames' words."""
    return slot_words(wording) | frame_words()
