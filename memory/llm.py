"""Optional LLM pass over the deterministic compressed context.

WHY optional and guarded: the platform must work offline and deterministically. When a language
model is configured, it may rewrite the deterministic context into a tighter narrative, but the
result is only used if the call succeeds, fits the token budget and keeps every critical id;
otherwise the deterministic text is returned unchanged. Token usage is always recorded.

WHY a callable and no HTTP here: ``memory/`` is a server-free library. The one OpenAI-compatible
client (with its endpoint, key, model and timeout) is built by ``services/llm.py`` from Settings
and handed in as ``complete``; tests hand in a plain function.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from memory.notation import expand_text, pack_ids
from memory.tokens import count_tokens

SYSTEM_PROMPT = (
    "You compress incident context for an SRE agent. Keep every error/warning/fatal message shape, "
    "every identifier (block, request, trace, node, IP, error code) verbatim, counts and times. "
    "Drop repetition and routine noise. Answer with the compressed context only."
)


class Complete(Protocol):
    """One chat completion: the answer's text and the tokens the call used (prompt + completion).

    Raises on any failure (network, timeout, HTTP status, unparsable answer); the caller falls back.
    """

    def __call__(self, prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]: ...


@dataclass
class LLMResult:
    """What the pass produced and why (kept for audit and token accounting)."""

    text: str
    used_llm: bool
    reason: str
    tokens: int = 0
    seconds: float = 0.0
    missing_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"text": None}


def refine_with_llm(
    text: str, *, budget_tokens: int, complete: Complete, must_keep: list[str] | None = None
) -> LLMResult:
    """Ask the model to compress ``text``; fall back to ``text`` on any failure."""
    must_keep = must_keep or []
    started = time.perf_counter()
    prompt = (
        f"Compress the following context to at most {budget_tokens} tokens.\n"
        "These ids must stay recoverable (verbatim, or in the same brace/table notation): "
        f"{' '.join(pack_ids(must_keep)) if must_keep else '(none)'}\n\n{text}"
    )
    try:
        answer, tokens = complete(prompt, max_tokens=max(16, budget_tokens * 2), system=SYSTEM_PROMPT)
        answer = answer.strip()
    except Exception as exc:  # noqa: BLE001 - the client is foreign code; any failure means "deterministic"
        return LLMResult(text, False, f"llm call failed: {type(exc).__name__}: {exc}"[:300],
                         seconds=time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    recoverable = expand_text(answer) if must_keep else set()
    missing = [i for i in must_keep if i not in answer and i not in recoverable]
    if missing:
        return LLMResult(text, False, "llm dropped critical ids", tokens, elapsed, missing)
    if not answer or count_tokens(answer) > budget_tokens:
        return LLMResult(text, False, "llm answer empty or over budget", tokens, elapsed)
    return LLMResult(answer, True, "ok", tokens, elapsed)
