"""Everything the demo needs in one call: moto, a provisioned fleet, telemetry, the sim API, the loop.

Why a single entry point: ``aiops demo`` (in services/) should not need to know how the pieces
fit together; it starts a ``SimStack``, hands ``moto_endpoint`` and ``api_url`` to the platform's
connectors, runs the loop in the background and reads ``summary()`` at the end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sim.cloud import MotoHandle, start_moto
from sim.fleet import DEFAULT_SERVICES, Fleet
from sim.runner import Simulation
from sim.server import SimServer
from sim.telemetry import Telemetry


@dataclass
class SimStack:
    fleet: Fleet
    telemetry: Telemetry
    simulation: Simulation
    api: SimServer
    moto: MotoHandle | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        *,
        emit_url: str | None = None,
        nodes: int = 6,
        services: tuple[str, ...] = DEFAULT_SERVICES,
        seed: int = 0,
        fault_interval_s: float = 20.0,
        first_fault_after_s: float = 2.0,
        max_active_faults: int = 3,
        kinds: tuple[str, ...] | None = None,
        moto_endpoint: str | None = None,
        api_host: str = "127.0.0.1",
        api_port: int = 0,
        cascade_first: bool = True,
    ) -> SimStack:
        """Start (or reuse, with ``moto_endpoint``) a moto server, provision a fleet and serve the sim API."""
        moto = None if moto_endpoint else start_moto()
        endpoint = moto_endpoint or (moto.endpoint_url if moto else "")
        fleet = Fleet.provision(endpoint, nodes=nodes, services=services, seed=seed)
        telemetry = Telemetry(fleet, seed=seed)
        simulation = Simulation(
            fleet,
            seed=seed,
            fault_interval_s=fault_interval_s,
            emit_url=emit_url,
            first_fault_after_s=first_fault_after_s,
            max_active_faults=max_active_faults,
            kinds=kinds,
            telemetry=telemetry,
            cascade_first=cascade_first,
        )
        api = SimServer(
            fleet, telemetry=telemetry, simulation=simulation, host=api_host, port=api_port
        ).start()
        return cls(fleet=fleet, telemetry=telemetry, simulation=simulation, api=api, moto=moto)

    @property
    def moto_endpoint(self) -> str:
        return self.fleet.endpoint_url

    @property
    def api_url(self) -> str:
        return self.api.url

    def info(self) -> dict[str, Any]:
        return {"cluster": self.fleet.cluster, "moto_endpoint": self.moto_endpoint, "sim_api": self.api_url}

    def run_in_background(self, duration_s: float, *, tick_s: float = 0.5) -> threading.Thread:
        """Run the simulation loop in a daemon thread; ``stop()`` ends it early."""
        self._thread = threading.Thread(
            target=self.simulation.run,
            args=(duration_s, self._stop),
            kwargs={"tick_s": tick_s},
            name="sim-loop",
            daemon=True,
        )
        self._thread.start()
        return self._thread

    def stop_loop(self, *, timeout_s: float = 30.0) -> None:
        """End the background loop (its last step still delivers pending resolved alerts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def summary(self) -> dict[str, Any]:
        return self.simulation.summary()

    def stop(self) -> None:
        """Stop the loop, the sim API and (when this stack started it) the moto server."""
        self.stop_loop(timeout_s=10)
        self.simulation.close()
        self.api.stop()
        if self.moto is not None:
            self.moto.stop()

    def __enter__(self) -> SimStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
