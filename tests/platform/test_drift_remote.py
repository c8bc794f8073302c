"""Reconcile on one machine, review on another: the workspace lives in git and S3, not on a shared disk.

Two settings objects with different ``state_dir`` stand for the iac worker and the API; the only
things they share are the database, a git remote (a bare repository) and S3 on moto.
"""

from __future__ import annotations

import subprocess

import boto3
import pytest

from services.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BUCKET = "tfstate-and-trail"


def _git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _upload(s3, directory, prefix: str) -> None:
    for path in sorted(directory.iterdir()):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{path.name}", Body=path.read_bytes())


def test_reconcile_in_one_process_and_approve_in_another_through_git_and_s3(platform_env, tmp_path):
    from services.drift.service import reconcile_workspace, review
    from sim.drift import DriftSimulator

    endpoint = platform_env["AIOPS_CLOUD_ENDPOINT"]
    drift = DriftSimulator(endpoint=endpoint, workdir=tmp_path / "operator", seed=3)
    drift.setup()
    remote = tmp_path / "remote.git"
    _git("clone", "-q", "--bare", str(drift.terraform_dir), str(remote), cwd=tmp_path)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="bastion/terraform.tfstate", Body=drift.state_file.read_bytes())
    spec = {"name": "bastion", "repo_url": remote.as_uri(), "state_url": f"s3://{BUCKET}/bastion/terraform.tfstate",
            "trace_source": f"s3://{BUCKET}/trail/", "endpoint_url": endpoint, "simulator": True}
    worker = Settings(state_dir=str(tmp_path / "worker"), iac_workspaces=[spec])
    api = Settings(state_dir=str(tmp_path / "api"), iac_workspaces=[spec])

    drift.step()  # an out-of-band change; its CloudTrail file is shipped to S3 as CloudTrail would
    _upload(s3, drift.trace_dir, "trail/")
    result = reconcile_workspace(worker, "bastion")
    assert len(result["proposals_created"]) == 1, result
    assert (tmp_path / "worker" / "iac" / "bastion" / ".git").is_dir()
    assert not (tmp_path / "api").exists()  # nothing of the worker's reaches the API's disk

    row = review(api, result["proposals_created"][0], approved=True, reviewer="alice")
    assert row.status == "approved" and row.branch.startswith("nsync/")
    assert row.branch in _git("branch", "--format=%(refname:short)", cwd=remote).split()
    changed = _git("diff", "--name-only", "main", row.branch, cwd=remote).split()
    assert changed and all(name.endswith(".tf") for name in changed)
    assert _git("rev-parse", "main", cwd=remote) == _git("rev-parse", "HEAD", cwd=drift.terraform_dir)  # main untouched


def test_a_remote_workspace_without_state_is_a_clear_error(platform_env, tmp_path):
    from services.drift.service import reconcile_workspace
    from services.errors import Invalid

    spec = {"name": "nostate", "repo_url": (tmp_path / "r.git").as_uri(), "trace_source": "lookup-events"}
    with pytest.raises(Invalid, match="state_url"):
        reconcile_workspace(Settings(state_dir=str(tmp_path), iac_workspaces=[spec]), "nostate")
