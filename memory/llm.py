"""Optional LLM pass over the deterministic compressed context.

WHY optional and guarded: the platform must work offline and deterministically. When an
OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, ...) is configured, it may rewrite the
deterministic context into a tighter narrative, but the result is only used if the call succeeds
within its timeout, fits the token budget and keeps every critical id; otherwise the
deterministic text is returned unchanged. Token usage is always recorded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from memory.notation import expand_text, pack_ids
from memory.tokens import count_tokens

SYSTEM_PROMPT = (
    "You compress incident context for an SRE agent. Keep every error/warning/fatal message shape, "
    "every identifier (block, request, trace, node, IP, error code) verbatim, counts and times. "
    "Drop repetition and routine noise. Answer with the compressed context only."
)


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to call the chat-completions endpoint. ``endpoint`` is the API base, e.g.
    ``http://127.0.0.1:11434/v1``; ``/chat/completions`` is appended."""

    endpoint: str
    model: str
    api_key: str | None = None
    timeout_seconds: float = 20.0
    temperature: float = 0.0


@dataclass
class LLMResult:
    """What the pass produced and why (kept for audit and token accounting)."""

    text: str
    used_llm: bool
    reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    missing_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"text": None}


def refine_with_llm(
    text: str, *, budget_tokens: int, settings: LLMSettings, must_keep: list[str] | None = None
) -> LLMResult:
    """Ask the endpoint to compress ``text``; fall back to ``text`` on any failure."""
    must_keep = must_keep or []
    started = time.perf_counter()
    prompt = (
        f"Compress the following context to at most {budget_tokens} tokens.\n"
        "These ids must stay recoverable (verbatim, or in the same brace/table notation): "
        f"{' '.join(pack_ids(must_keep)) if must_keep else '(none)'}\n\n{text}"
    )
    headers = {"Content-Type": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    body = {
        "model": settings.model,
        "temperature": settings.temperature,
        "max_tokens": max(16, budget_tokens * 2),
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
    }
    url = settings.endpoint.rstrip("/") + "/chat/completions"
    fallback = LLMResult(text=text, used_llm=False, reason="", prompt_tokens=count_tokens(SYSTEM_PROMPT + prompt))
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=settings.timeout_seconds)
        response.raise_for_status()
        payload = response.json()
        answer = payload["choices"][0]["message"]["content"].strip()
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        fallback.reason = f"llm call failed: {type(exc).__name__}: {exc}"[:300]
        fallback.seconds = time.perf_counter() - started
        return fallback
    usage = payload.get("usage") or {}
    completion_tokens = int(usage.get("completion_tokens") or count_tokens(answer))
    prompt_tokens = int(usage.get("prompt_tokens") or fallback.prompt_tokens)
    elapsed = time.perf_counter() - started
    recoverable = expand_text(answer) if must_keep else set()
    missing = [i for i in must_keep if i not in answer and i not in recoverable]
    if missing:
        return LLMResult(text, False, "llm dropped critical ids", prompt_tokens, completion_tokens, elapsed, missing)
    if not answer or count_tokens(answer) > budget_tokens:
        return LLMResult(text, False, "llm answer empty or over budget", prompt_tokens, completion_tokens, elapsed)
    return LLMResult(answer, True, "ok", prompt_tokens, completion_tokens, elapsed)
