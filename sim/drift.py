"""Out-of-band changes for the demo: a real Terraform project provisioned on the simulator's moto,
then console-style edits recorded as CloudTrail files for the platform's reconciler to find.

It never resets moto (the fleet lives on the same server); it provisions beside it.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iac.recorder import Recorder
from iac.state import new_state_document
from sim.drift_inject import PROVISIONERS, Ctx, catalog, make_session

PROJECT = "learn-terraform-drift-and-policy"
PROJECT_SOURCE = Path(__file__).resolve().parent / "terraform" / PROJECT
# drift kinds that can repeat without breaking each other (no deletions in an endless demo)
SAFE_KINDS = {"attribute", "tags", "sg_rule_add"}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "aiops-demo", "GIT_AUTHOR_EMAIL": "demo@aiops.local",
                        "GIT_COMMITTER_NAME": "aiops-demo", "GIT_COMMITTER_EMAIL": "demo@aiops.local",
                        "PATH": "/usr/bin:/bin:/usr/local/bin"})


@dataclass
class DriftSimulator:
    endpoint: str
    workdir: Path
    seed: int = 0
    injected: list[dict[str, Any]] = field(default_factory=list)
    _ctx: Ctx | None = None
    _files: int = 0

    @property
    def terraform_dir(self) -> Path:
        return self.workdir / PROJECT

    @property
    def state_file(self) -> Path:
        return self.workdir / "terraform.tfstate"

    @property
    def trace_dir(self) -> Path:
        return self.workdir / "cloudtrail"

    def setup(self) -> dict[str, Any]:
        """Copy the project into a fresh git repository, provision it as Terraform would, write its state."""
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.trace_dir.mkdir(parents=True)
        shutil.copytree(PROJECT_SOURCE, self.terraform_dir)
        _git(self.terraform_dir, "init", "-q", "-b", "main")
        _git(self.terraform_dir, "add", "-A")
        _git(self.terraform_dir, "commit", "-q", "-m", "infrastructure as deployed")
        session = make_session()
        ctx = Ctx(endpoint=self.endpoint, session=session, recorder=Recorder(session), workdir=self.workdir,
                  terraform_dir=self.terraform_dir, rng=random.Random(self.seed))
        ctx.as_terraform()
        PROVISIONERS[PROJECT](ctx)
        self.state_file.write_text(json.dumps(new_state_document(ctx.state_entries), indent=1))
        self._ctx = ctx
        self._flush()
        return {"name": "demo-bastion", "terraform_dir": str(self.terraform_dir), "state_file": str(self.state_file),
                "trace_source": str(self.trace_dir), "endpoint_url": self.endpoint,
                "repo_dir": str(self.terraform_dir), "simulator": True}

    def _flush(self) -> Path | None:
        ctx = self._ctx
        assert ctx is not None, "start() sets the context"
        if not ctx.recorder.records:
            return None
        self._files += 1
        path = ctx.recorder.write(self.trace_dir / f"{self._files:05d}.json")
        ctx.recorder.records = []
        return path

    def step(self) -> dict[str, Any]:
        """One console change from the project's drift catalog, written as a new CloudTrail file."""
        ctx = self._ctx
        assert ctx is not None, "start() sets the context"
        choices = [(kind, fn) for kind, fn in catalog(PROJECT) if kind in SAFE_KINDS]
        kind, fn = ctx.rng.choice(choices)
        ctx.as_console()
        truth = fn(ctx)
        path = self._flush()
        event = {"kind": kind, "keys": [list(k) for k in truth.keys], "trace_file": str(path) if path else None}
        self.injected.append(event)
        return event
