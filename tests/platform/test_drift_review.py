"""Drift review is a compare-and-set claim: two concurrent approvals commit once, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.platform.pgdb import fresh_postgres

pytestmark = pytest.mark.integration
_ORIGINAL_APPROVE = __import__("iac.review", fromlist=["approve"]).approve


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    from services.storage.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'aiops.db'}"
        upgrade(url)
        yield url
        return
    with fresh_postgres("aiops_review") as url:
        upgrade(url)
        yield url


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def setup(database_url, tmp_path, monkeypatch):
    """A workspace repository, one pending proposal patching it, settings naming both."""
    from iac.models import Proposal
    from services import drift
    from services.config import Settings
    from services.drift.models import DriftProposal
    from services.drift.service import proposal_payload
    from services.storage.base import session_scope

    repo = tmp_path / "infra"
    repo.mkdir()
    (repo / "main.tf").write_text('resource "aws_instance" "web" {\n  instance_type = "t3.micro"\n}\n')
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    settings = Settings(database_url=database_url, iac_workspaces=[
        {"name": "ws", "terraform_dir": str(repo), "state_file": str(repo / "terraform.tfstate"),
         "trace_source": str(tmp_path / "trail")}])
    patched = Proposal(id="p1", addresses=["aws_instance.web"], diff="--- a\n+++ b\n", changes=[], records=[],
                       files={str(repo / "main.tf"): 'resource "aws_instance" "web" {\n  instance_type = "t3.large"\n}\n'})
    with session_scope(database_url) as db:
        row = DriftProposal(workspace="ws", external_id="p1", status="pending", title="t", diff=patched.diff,
                            payload=proposal_payload(patched))
        db.add(row)
        db.flush()
        proposal_id = row.id
    monkeypatch.setattr(drift.service, "knowledge_base", lambda settings: None)  # the KB is tested in tests/iac
    return settings, proposal_id, repo


def _slow_approve(monkeypatch, calls: list[str], *, fail: bool = False):
    """Count the git work, and make it take long enough for a rival approval to arrive meanwhile."""
    import iac.review

    real = _ORIGINAL_APPROVE

    def approve(proposal, workspace, **kwargs):
        calls.append(kwargs.get("reviewer", ""))
        time.sleep(0.5)
        if fail:
            raise RuntimeError("workspace repository has uncommitted changes; not switching branches")
        return real(proposal, workspace, **kwargs)

    monkeypatch.setattr(iac.review, "approve", approve)


def test_two_concurrent_approvals_commit_once(setup, monkeypatch):
    from services.drift.service import AlreadyReviewed, review

    settings, proposal_id, repo = setup
    calls: list[str] = []
    _slow_approve(monkeypatch, calls)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def approve_as(name: str) -> None:
        barrier.wait()
        try:
            outcomes[name] = review(settings, proposal_id, approved=True, reviewer=name)
        except Exception as exc:  # noqa: BLE001 - the test inspects which error each thread got
            outcomes[name] = exc

    threads = [threading.Thread(target=approve_as, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1, calls  # the git work ran once
    winner = calls[0]
    loser = "bob" if winner == "alice" else "alice"
    assert outcomes[winner].status == "approved" and outcomes[winner].branch == "nsync/p1"
    assert isinstance(outcomes[loser], AlreadyReviewed), outcomes[loser]
    assert "already" in str(outcomes[loser]) and winner in str(outcomes[loser])
    assert _git(repo, "branch", "--format=%(refname:short)").split() == ["main", "nsync/p1"]
    assert _git(repo, "rev-list", "--count", "main..nsync/p1").strip() == "1"  # exactly one branch commit
    with pytest.raises(AlreadyReviewed):
        review(settings, proposal_id, approved=False, reviewer="carol", comment="too late")


def test_failed_git_work_puts_the_proposal_back_to_pending(setup, monkeypatch):
    from services.drift.models import DriftProposal
    from services.drift.service import ApplyFailed, ProposalNotFound, ReviewError, review
    from services.storage.base import session_scope

    settings, proposal_id, repo = setup
    calls: list[str] = []
    _slow_approve(monkeypatch, calls, fail=True)
    with pytest.raises(ApplyFailed, match="pending again"):
        review(settings, proposal_id, approved=True, reviewer="alice")
    with session_scope(settings.database_url) as db:
        row = db.get(DriftProposal, proposal_id)
        assert row.status == "pending" and row.reviewer is None
        assert "uncommitted changes" in row.review_comment
    with pytest.raises(ReviewError):
        review(settings, proposal_id, approved=False, reviewer="bob", comment="  ")
    with pytest.raises(ProposalNotFound):
        review(settings, proposal_id + 100, approved=True, reviewer="bob")
    _slow_approve(monkeypatch, calls)
    assert review(settings, proposal_id, approved=True, reviewer="bob").status == "approved"
