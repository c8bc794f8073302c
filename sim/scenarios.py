"""Seeded incident scenarios for benchmarks: which fault, where the alert fires, and what noise comes with it.

Why a generator and not a table: the benchmark must cover every fault kind, direct and cascading,
with and without misleading changes, in numbers large enough to read per-kind rates, and two seed
sets must give disjoint scenarios (tune on one, report on the other). A scenario is plain data; it
is staged on a freshly provisioned fleet with ``stage_all``, which injects the faults through the
ordinary ``FaultInjector`` (the simulator's ground truth), so nothing here decides what is right.

Variants (independent draws; a scenario can be several at once):

* ``direct``: the alert fires on the faulty component itself;
* ``cascade``: the alert fires on a dependent service (a service on the faulty node, or a caller of
  the faulty service); the fix is still on the root;
* ``decoy``: an unrelated change (config push) on another service shortly before the fault, so a
  change event alone does not give the answer;
* ``two faults``: a second fault of another kind on another component starts within a minute of
  the first; each raises its own alert and both must be fixed;
* ``noise``: unrelated alerts from transient blips on components the faults do not involve (a
  short-lived load, contention or network condition that clears by itself, as a flapping alert
  does), one after the other, minutes before the faults start; its alert is picked up within a minute of the blip's end, while the source
  may still call it firing (its "resolved" arrives up to five minutes late, as Alertmanager's group
  interval delays it). Any action taken for such an alert clears nothing;
* ``paraphrased``: every fault's log lines are paraphrases (``sim.paraphrase``), in the ``tune``
  wording on the tuning seed set 0 and the ``held_out`` wording on every other seed set.

The base draws (kind, cascade, decoy) come from their own random stream, the newer variants from
another, so adding variants did not change which base scenario a seed gives.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sim.faults import FAULT_KINDS, Fault, FaultInjector

if TYPE_CHECKING:
    from sim.fleet import Fleet

CASCADE_SHARE = 0.4
DECOY_SHARE = 0.3
TWO_FAULT_SHARE = 0.15
NOISE_SHARE = 0.2
PARAPHRASE_SHARE = 0.25
TUNE_SEED = 0  # the seed set thresholds and rules were tuned on; it alone sees the "tune" wording
# a noise blip: how long the transient condition lasts, and how late the source's "resolved" arrives after it
NOISE_BLIP_S = (45.0, 150.0)
RESOLVE_LAG_S = (0.0, 300.0)
PICKUP_S = 60.0
# what can flap: load, contention and network conditions come and go by themselves; a bad release, a failed
# disk, a hung kernel or a leak stays until someone acts, so they are never noise
TRANSIENT_KINDS = ("cpu_saturation", "cpu_steal", "network_partition", "nic_degradation", "node_memory_pressure",
                   "traffic_surge")


@dataclass(frozen=True)
class Scenario:
    index: int
    seed: int          # seeds the fleet, its telemetry and the injector for this scenario
    kind: str
    cascade: bool
    decoy_change: bool
    second_kind: str | None = None   # a second, simultaneous fault of this kind elsewhere
    noise_alerts: int = 0            # unrelated alerts from transient blips
    wording: str | None = None       # paraphrased log lines: "tune" or "held_out"; None = the catalog's lines

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def variants(self) -> list[str]:
        """The variant names this scenario belongs to (for per-variant tables)."""
        out = ["cascade" if self.cascade else "direct"]
        out += ["decoy change"] * self.decoy_change + ["two faults"] * bool(self.second_kind)
        out += ["noise alerts"] * bool(self.noise_alerts) + ["paraphrased logs"] * bool(self.wording)
        return out


@dataclass
class Staged:
    """What ``stage_all`` put on the fleet: the faults to fix (first = the scenario's kind) and the noise."""

    faults: list[Fault]
    noise: list[Fault] = field(default_factory=list)
    # fault id -> seconds after the fault ends that the source reports it resolved
    resolve_lag: dict[str, float] = field(default_factory=dict)
    # noise id -> when a responder picks its alert up (after the blip ended, before the faults start)
    picked_up: dict[str, float] = field(default_factory=dict)


def generate(count: int, *, seed: int = 0, kinds: tuple[str, ...] | None = None,
             cascade_share: float = CASCADE_SHARE, decoy_share: float = DECOY_SHARE,
             two_fault_share: float = TWO_FAULT_SHARE, noise_share: float = NOISE_SHARE,
             paraphrase_share: float = PARAPHRASE_SHARE) -> list[Scenario]:
    """``count`` scenarios: kinds in equal numbers (a shuffled cycle), variants drawn with the given shares.

    Scenario seeds are ``seed * 1_000_003 + index``, so seed sets never share a scenario.
    """
    chosen = tuple(sorted(kinds or FAULT_KINDS))
    unknown = set(chosen) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
    rng = random.Random(f"scenarios|{seed}")
    extra = random.Random(f"scenario-variants|{seed}")
    wording = "tune" if seed == TUNE_SEED else "held_out"
    out: list[Scenario] = []
    order: list[str] = []
    for i in range(count):
        if not order:
            order = list(chosen)
            rng.shuffle(order)
        kind = order.pop()
        cascades = FAULT_KINDS[kind].cascade_alert is not None
        cascade = cascades and rng.random() < cascade_share
        decoy = rng.random() < decoy_share
        others = [k for k in sorted(FAULT_KINDS) if k != kind]
        second = extra.choice(others) if extra.random() < two_fault_share else None
        noise = extra.choice((1, 2)) if extra.random() < noise_share else 0
        paraphrased = extra.random() < paraphrase_share
        out.append(Scenario(index=i, seed=seed * 1_000_003 + i, kind=kind, cascade=cascade, decoy_change=decoy,
                            second_kind=second, noise_alerts=noise, wording=wording if paraphrased else None))
    return out


def stage(scenario: Scenario, fleet: Fleet, *, at: float) -> Fault:
    """Inject the scenario's fault (started at ``at``) on ``fleet`` with all its variants; return that fault."""
    return stage_all(scenario, fleet, at=at).faults[0]


def stage_all(scenario: Scenario, fleet: Fleet, *, at: float) -> Staged:
    """Inject every fault of ``scenario`` and its noise on ``fleet``; the first fault starts at ``at``."""
    injector = FaultInjector(fleet, seed=scenario.seed)
    fault = injector.inject(scenario.kind, at=at, cascade=scenario.cascade)
    rng = random.Random(f"variants|{scenario.seed}")
    staged = Staged(faults=[fault])
    if scenario.second_kind:
        # another component than anything the first fault involves, so each fault has one ground truth
        second = injector.inject(scenario.second_kind, at=at + rng.uniform(0.0, 60.0),
                                 target=_free_target(fleet, scenario.second_kind, avoid=_involved(fleet, fault),
                                                     rng=rng))
        staged.faults.append(second)
    involved = set().union(*(_involved(fleet, f) for f in staged.faults))
    start = at - rng.uniform(900.0, 1100.0)
    for _ in range(scenario.noise_alerts):
        kind = rng.choice(TRANSIENT_KINDS)
        target = _free_target(fleet, kind, avoid=involved, rng=rng)
        if target is None:
            continue
        # one after the other and over well before the faults start: a blip that ended, then its alert is
        # picked up while the source may still call it firing (the resolved notice lags)
        blip = injector.inject(kind, target=target, at=start)
        blip.resolved_at = start + rng.uniform(*NOISE_BLIP_S)
        blip.resolved_by = "transient"
        staged.noise.append(blip)
        staged.resolve_lag[blip.id] = rng.uniform(*RESOLVE_LAG_S)
        staged.picked_up[blip.id] = blip.resolved_at + rng.uniform(0.0, PICKUP_S)
        involved |= _involved(fleet, blip)
        start = staged.picked_up[blip.id] + rng.uniform(30.0, 200.0)
    if scenario.decoy_change:
        decoy = random.Random(f"decoy|{scenario.seed}")
        # unrelated to every fault of the scenario (a second fault's service included), else it is no decoy
        touched = {c for f in staged.faults for c in (f.service, f.alert_service, f.target)}
        others = sorted(s for s in fleet.services if s not in touched)
        if others:
            where = decoy.choice(others)
            fleet.add_change(where, "config", f"config revision pushed to {where}",
                             at=at - decoy.uniform(30.0, 900.0))
    return staged


def _involved(fleet: Fleet, fault: Fault) -> set[str]:
    """Components a fault touches: its target, its node's services or its service's nodes, the alerted service."""
    out = {c for c in (fault.target, fault.service, fault.alert_service, fault.node) if c}
    if fault.node:
        out |= set(fleet.node(fault.node).services)
    if fault.service and fault.level == "service":
        out |= set(fleet.services.get(fault.service, []))
    return out


def _free_target(fleet: Fleet, kind: str, *, avoid: set[str], rng: random.Random) -> str | None:
    """A component of the kind's level that shares nothing with ``avoid`` (None when there is none)."""
    if FAULT_KINDS[kind].level == "node":
        pool = [n.id for n in fleet.nodes if n.state == "running" and n.id not in avoid
                and not set(n.services) & avoid]
    else:
        pool = [s for s in fleet.services if s not in avoid and not set(fleet.services[s]) & avoid]
    return rng.choice(sorted(pool)) if pool else None
