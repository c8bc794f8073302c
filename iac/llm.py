"""Optional LLM for API patterns no rule and no past reconciliation explains.

The model is reached through a ``complete`` callable (``services/llm.py`` builds the platform's one
OpenAI-compatible client, with its timeout, from Settings): ``iac/`` stays a server-free library and
tests hand in a plain function. Every call's tokens are counted; every failure (network, timeout,
unparsable answer) returns None, which the caller turns into "needs a person": the deterministic
fallback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from iac.models import Intent, TraceRecord
from iac.templates import apply_template

PROMPT = """You map an AWS CloudTrail API call to Terraform (AWS provider v4) attribute changes.
Answer with one JSON object only:
{{"event": "<eventName>", "service": "<service>", "resource_type": "<terraform type>",
 "id_field": "<dotted path in requestParameters naming the resource>",
 "mappings": [{{"attribute": "<terraform attribute, dotted for nested blocks>", "request_path": "<dotted path in requestParameters>"}}]}}
If the call changes no Terraform-managed configuration, answer {{"mappings": []}}.

eventSource: {source}
eventName: {name}
requestParameters: {request}
"""


class Complete(Protocol):
    """One chat completion: the answer's text and the tokens the call used (prompt + completion).

    Raises on any failure (network, timeout, HTTP status); ``LLMInference`` falls back.
    """

    def __call__(self, prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]: ...


@dataclass
class LLMInference:
    """Intent inference for one unexplained API call, through ``complete``; counts calls and tokens."""

    complete: Complete
    max_tokens: int = 400
    tokens_used: int = 0
    calls: int = 0

    def ask(self, prompt: str) -> str | None:
        self.calls += 1
        try:
            text, tokens = self.complete(prompt, max_tokens=self.max_tokens)
        except Exception:  # noqa: BLE001 - the client is foreign code; any failure means "needs a person"
            return None
        self.tokens_used += int(tokens)
        return text

    def template_for(self, record: TraceRecord) -> dict[str, Any] | None:
        request = json.dumps(record.request, sort_keys=True)[:3000]
        answer = self.ask(PROMPT.format(source=record.event_source, name=record.event_name, request=request))
        if not answer:
            return None
        m = re.search(r"\{.*\}", answer, re.S)
        if not m:
            return None
        try:
            template = json.loads(m.group(0))
        except json.JSONDecodeError:
            return None
        if not isinstance(template, dict):
            return None
        template.setdefault("event", record.event_name)
        template.setdefault("service", record.service)
        return template

    def infer(self, record: TraceRecord) -> tuple[list[Intent] | None, dict[str, Any] | None]:
        template = self.template_for(record)
        if template is None:
            return None, None
        if not template.get("mappings"):
            return [], template
        return apply_template(template, record, source="llm"), template
