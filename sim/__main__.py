"""``python -m sim``: run the simulated fleet alone (no platform), printing where it listens and a summary.

Useful to poke the sim API by hand or to point a separately started platform at it.
"""

from __future__ import annotations

import argparse
import json
import time

from sim.stack import SimStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--emit-url", default=None, help="the platform's Alertmanager ingest URL")
    parser.add_argument("--nodes", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-interval", type=float, default=20.0)
    parser.add_argument("--api-port", type=int, default=0)
    args = parser.parse_args(argv)
    with SimStack.start(
        emit_url=args.emit_url,
        nodes=args.nodes,
        seed=args.seed,
        fault_interval_s=args.fault_interval,
        api_port=args.api_port,
    ) as stack:
        print(json.dumps(stack.info()), flush=True)
        thread = stack.run_in_background(args.duration)
        while thread.is_alive():
            time.sleep(0.5)
        print(json.dumps(stack.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
