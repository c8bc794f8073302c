"""Seeded incident scenarios for benchmarks: which fault, where the alert fires, and what noise comes with it.

Why a generator and not a table: the benchmark must cover every fault kind, direct and cascading,
with and without misleading changes, in numbers large enough to read per-kind rates, and two seed
sets must give disjoint scenarios (tune on one, report on the other). A scenario is plain data; it
is staged on a freshly provisioned fleet with ``stage``, which injects the fault through the
ordinary ``FaultInjector`` (the simulator's ground truth), so nothing here decides what is right.

Variants:

* ``direct``: the alert fires on the faulty component itself;
* ``cascade``: the alert fires on a dependent service (a service on the faulty node, or a caller of
  the faulty service); the fix is still on the root;
* ``decoy``: an unrelated change (config push) on another service shortly before the fault, so a
  change event alone does not give the answer.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sim.faults import FAULT_KINDS, Fault, FaultInjector

if TYPE_CHECKING:
    from sim.fleet import Fleet

CASCADE_SHARE = 0.4
DECOY_SHARE = 0.3


@dataclass(frozen=True)
class Scenario:
    index: int
    seed: int          # seeds the fleet, its telemetry and the injector for this scenario
    kind: str
    cascade: bool
    decoy_change: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate(count: int, *, seed: int = 0, kinds: tuple[str, ...] | None = None,
             cascade_share: float = CASCADE_SHARE, decoy_share: float = DECOY_SHARE) -> list[Scenario]:
    """``count`` scenarios: kinds in equal numbers (a shuffled cycle), variants drawn with the given shares.

    Scenario seeds are ``seed * 1_000_003 + index``, so seed sets never share a scenario.
    """
    chosen = tuple(sorted(kinds or FAULT_KINDS))
    unknown = set(chosen) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
    rng = random.Random(f"scenarios|{seed}")
    out: list[Scenario] = []
    order: list[str] = []
    for i in range(count):
        if not order:
            order = list(chosen)
            rng.shuffle(order)
        kind = order.pop()
        cascades = FAULT_KINDS[kind].cascade_alert is not None
        out.append(Scenario(index=i, seed=seed * 1_000_003 + i, kind=kind,
                            cascade=cascades and rng.random() < cascade_share,
                            decoy_change=rng.random() < decoy_share))
    return out


def stage(scenario: Scenario, fleet: Fleet, *, at: float) -> Fault:
    """Inject the scenario's fault (started at ``at``) on ``fleet`` and add its decoy change."""
    injector = FaultInjector(fleet, seed=scenario.seed)
    fault = injector.inject(scenario.kind, at=at, cascade=scenario.cascade)
    if scenario.decoy_change:
        rng = random.Random(f"decoy|{scenario.seed}")
        involved = {fault.service, fault.alert_service, fault.target}
        others = sorted(s for s in fleet.services if s not in involved)
        if others:
            where = rng.choice(others)
            fleet.add_change(where, "config", f"config revision pushed to {where}",
                             at=at - rng.uniform(30.0, 900.0))
    return fault
