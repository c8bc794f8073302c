"""Workspaces that live nowhere on this machine: a git remote for the code, S3 for the state.

Reconciliation (a worker) and review (the API) may run on different machines. A workspace spec
may therefore name a ``repo_url`` (any git remote) and a ``state_url`` (``s3://bucket/key`` as
Terraform's S3 backend writes it, or a path). Each process keeps its own checkout under
``Settings.state_dir`` and brings it up to date before use; approvals push their review branch
back to the remote. Specs with plain paths (``terraform_dir``, ``state_file``) still work on one
machine, as in the demo.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import git

from iac.models import Workspace
from services.config import Settings
from services.errors import Invalid, Unavailable

REMOTE = "origin"


def checkout_dir(settings: Settings, name: str) -> Path:
    """This process's private checkout of a remote workspace (never shared with another process)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise Invalid(f"workspace name {name!r} must be letters, digits, '.', '_' or '-'")
    return Path(settings.state_dir) / "iac" / name


def is_remote(spec: dict[str, Any]) -> bool:
    return bool(spec.get("repo_url"))


def workspace_from_spec(settings: Settings, spec: dict[str, Any]) -> Workspace:
    """The ``Workspace`` a spec describes, with paths in this process's checkout for remote specs."""
    name = spec["name"]
    if is_remote(spec):
        root = checkout_dir(settings, name)
        terraform_dir = root / spec.get("terraform_subdir", ".")
        state_url = spec.get("state_url") or spec.get("state_file")
        if not state_url:
            raise Invalid(f"workspace {name!r}: a remote workspace needs 'state_url' (s3://bucket/key or a path)")
        state_file = root.parent / f"{name}.tfstate" if str(state_url).startswith("s3://") else Path(state_url)
        repo_dir: Path | None = root
    else:
        for key in ("terraform_dir", "state_file"):
            if key not in spec:
                raise Invalid(f"workspace {name!r}: missing {key!r} (or give 'repo_url' and 'state_url')")
        terraform_dir, state_file = Path(spec["terraform_dir"]), Path(spec["state_file"])
        repo_dir = Path(spec["repo_dir"]) if spec.get("repo_dir") else None
    return Workspace(
        terraform_dir=terraform_dir, state_file=state_file, trace_source=spec["trace_source"],
        iac_principals=tuple(spec.get("iac_principals", ())), region=spec.get("region", settings.cloud_region),
        endpoint_url=spec.get("endpoint_url", settings.cloud_endpoint), repo_dir=repo_dir,
    )


def sync(settings: Settings, spec: dict[str, Any], *, session: Any) -> Workspace:
    """Bring this process's checkout and state copy up to date with the remote; returns the workspace.

    The checkout is reset to the remote's branch, so a half-finished local operation from a
    crashed process never leaks into the next reconciliation.
    """
    workspace = workspace_from_spec(settings, spec)
    if not is_remote(spec):
        return workspace
    root = checkout_dir(settings, spec["name"])
    branch = spec.get("branch", "main")
    try:
        if (root / ".git").is_dir():
            repo = git.Repo(root)
            repo.remote(REMOTE).fetch()
            repo.git.checkout("-B", branch, f"{REMOTE}/{branch}")
            repo.git.reset("--hard", f"{REMOTE}/{branch}")
            repo.git.clean("-fdx")
        else:
            root.parent.mkdir(parents=True, exist_ok=True)
            git.Repo.clone_from(spec["repo_url"], root, branch=branch)
    except git.GitCommandError as exc:
        raise Unavailable(f"workspace {spec['name']!r}: cannot fetch {spec['repo_url']} ({exc.stderr.strip()})") from exc
    state_url = str(spec.get("state_url") or spec.get("state_file"))
    if state_url.startswith("s3://"):
        bucket, _, key = state_url.removeprefix("s3://").partition("/")
        s3 = session.client("s3", endpoint_url=workspace.endpoint_url)
        workspace.state_file.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return workspace


def push_branch(settings: Settings, spec: dict[str, Any], branch: str) -> None:
    """Publish an approved review branch to the workspace's remote (never its main branch)."""
    if not is_remote(spec):
        return
    repo = git.Repo(checkout_dir(settings, spec["name"]))
    try:
        repo.remote(REMOTE).push(f"refs/heads/{branch}:refs/heads/{branch}").raise_if_error()
    except git.GitCommandError as exc:
        raise Unavailable(f"workspace {spec['name']!r}: cannot push {branch} ({exc.stderr.strip()})") from exc
