"""The platform's one LLM client: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI,
vLLM, Ollama), configured once from Settings.

WHY here and not in the libraries: ``memory/`` and ``iac/`` are server-free and may not import
each other, so each declares the small ``complete(prompt, *, max_tokens, system="") -> (text,
tokens)`` callable it needs and this module hands them the same client. One endpoint, one key,
one model, one timeout, one way of counting tokens.
"""

from __future__ import annotations

from typing import Any

import httpx

from memory.tokens import count_tokens


class LLMError(RuntimeError):
    """The completion failed (network, timeout, HTTP status, unparsable answer); callers fall back."""


class OpenAICompatibleClient:
    """``complete`` for the libraries; also counts calls and tokens for the whole process."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 20.0,
                 temperature: float = 0.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout_s, self.temperature = model, api_key, timeout_s, temperature
        self.calls = 0
        self.tokens_used = 0

    def __call__(self, prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]:
        """One completion: (answer text, tokens used). Raises ``LLMError`` on any failure."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": self.model, "temperature": self.temperature, "max_tokens": max_tokens, "messages": messages}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.calls += 1
        try:
            response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
            response.raise_for_status()
            payload: dict[str, Any] = response.json()
            text = payload["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        usage = payload.get("usage") or {}
        tokens = int(usage.get("total_tokens")
                     or (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
                     or count_tokens(system + prompt) + count_tokens(text))  # no usage reported: our own count
        self.tokens_used += tokens
        return text, tokens


def llm_from_settings(settings: Any) -> OpenAICompatibleClient | None:
    """The configured client, or None when no endpoint is set (the libraries stay deterministic)."""
    if not settings.llm_base_url:
        return None
    return OpenAICompatibleClient(base_url=settings.llm_base_url, model=settings.llm_model,
                                  api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s)
