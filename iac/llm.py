"""Optional LLM for API patterns no rule and no past reconciliation explains.

Any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, Ollama). Every call has a
timeout and a token count; every failure (network, timeout, unparsable answer) returns None, which
the caller turns into "needs a person": the deterministic fallback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

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


@dataclass
class LLMClient:
    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 20.0
    max_tokens: int = 400
    tokens_used: int = 0
    calls: int = 0

    def complete(self, prompt: str) -> str | None:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": prompt}]}
        self.calls += 1
        try:
            resp = httpx.post(self.base_url.rstrip("/") + "/chat/completions", json=body, headers=headers,
                              timeout=self.timeout)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError):
            return None
        usage = data.get("usage") or {}
        text = ((data.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        self.tokens_used += int(usage.get("total_tokens") or (len(prompt) + len(text)) // 4)
        return text

    def template_for(self, record: TraceRecord) -> dict[str, Any] | None:
        request = json.dumps(record.request, sort_keys=True)[:3000]
        answer = self.complete(PROMPT.format(source=record.event_source, name=record.event_name, request=request))
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
