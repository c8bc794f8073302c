"""Review of a proposal: approval commits its patch to a new branch (never main, never pushed);
rejection records why. Both verdicts go to the knowledge base so the next ranking learns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import git

from iac.models import Proposal, Workspace

PROTECTED = {"main", "master"}


def approve(
    proposal: Proposal,
    workspace: Workspace,
    *,
    kb: Any = None,
    reviewer: str = "reviewer",
    branch: str | None = None,
    templates: list[dict[str, Any]] | None = None,
) -> str:
    """Write the patched files on a new branch of the workspace's repository and commit them.

    Returns the branch name. The current branch is restored afterwards, so the working tree the
    scheduler reads stays on main.
    """
    repo_dir = Path(workspace.repo_dir or workspace.terraform_dir)
    repo = git.Repo(repo_dir, search_parent_directories=True)
    if repo.working_tree_dir is None:
        raise ValueError(f"{repo_dir} is in a bare repository; there is no working tree to commit from")
    root = Path(repo.working_tree_dir).resolve()
    branch = branch or f"nsync/{proposal.id}"
    if branch in PROTECTED or not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"refusing to commit to branch {branch!r}")
    if repo.is_dirty(untracked_files=False):
        raise RuntimeError("workspace repository has uncommitted changes; not switching branches")
    previous = repo.active_branch.name if not repo.head.is_detached else repo.head.commit.hexsha
    new = repo.create_head(branch)
    new.checkout()
    try:
        paths = []
        for path, text in proposal.files.items():
            p = Path(path).resolve()
            p.relative_to(root)  # never write outside the repository
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            paths.append(str(p.relative_to(root)))
        repo.index.add(paths)
        message = f"nsync: reconcile out-of-band changes ({', '.join(proposal.addresses)})\n\n"
        message += "\n".join(f"- {c.explanation}" for c in proposal.changes)
        if proposal.instructions:
            message += "\n\nRun after merge:\n" + "\n".join(f"  {i}" for i in proposal.instructions)
        actor = git.Actor(reviewer, f"{re.sub(r'[^A-Za-z0-9]', '', reviewer) or 'reviewer'}@nsync.local")
        repo.index.commit(message, author=actor, committer=actor)
    finally:
        repo.git.checkout(previous)
    if kb is not None:
        kb.record_verdict(proposal, approved=True, reason=f"approved by {reviewer}", templates=templates)
    return branch


def reject(proposal: Proposal, *, reason: str, kb: Any = None, reviewer: str = "reviewer") -> None:
    """Record why a proposal was wrong, so similar patterns rank this strategy lower next time."""
    if not reason.strip():
        raise ValueError("a rejection needs a reason")
    if kb is not None:
        kb.record_verdict(proposal, approved=False, reason=f"{reviewer}: {reason}")
