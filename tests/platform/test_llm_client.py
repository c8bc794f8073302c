"""One OpenAI-compatible client from Settings, handed to both libraries as ``complete``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.config import Settings
from services.llm import LLMError, OpenAICompatibleClient, llm_from_settings
from tests import loopback


class _Handler(loopback.Handler):
    reply = ""
    usage: dict = {"prompt_tokens": 123, "completion_tokens": 7, "total_tokens": 130}
    requests: list = []

    def do_POST(self):  # noqa: N802
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                    "body": json.loads(self.body())})
        self.send_json(200, {"choices": [{"message": {"role": "assistant", "content": type(self).reply}}],
                             "usage": type(self).usage})


@pytest.fixture
def fake_llm():
    """A local OpenAI-compatible endpoint (an LLM is the one thing we cannot run here)."""
    _Handler.requests = []
    server = loopback.serve(_Handler)
    yield f"{loopback.base_url(server)}/v1"
    loopback.stop(server)


def test_client_from_settings_counts_tokens_and_sends_the_key(fake_llm):
    assert llm_from_settings(Settings(llm_base_url=None)) is None
    client = llm_from_settings(Settings(llm_base_url=fake_llm, llm_model="m1", llm_api_key="k", llm_timeout_s=3))
    _Handler.reply = "hello"
    assert client("hi", max_tokens=50, system="be brief") == ("hello", 130)
    sent = _Handler.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer k"
    assert sent["body"]["model"] == "m1" and sent["body"]["max_tokens"] == 50
    assert [m["role"] for m in sent["body"]["messages"]] == ["system", "user"]
    assert client.calls == 1 and client.tokens_used == 130


def test_unreachable_endpoint_raises_llm_error():
    client = OpenAICompatibleClient(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=1)
    with pytest.raises(LLMError):
        client("hi", max_tokens=10)


def test_one_client_serves_memory_and_iac(fake_llm):
    from iac.llm import LLMInference
    from iac.models import TraceRecord
    from memory.compressor import ContextCompressor

    client = OpenAICompatibleClient(base_url=fake_llm, model="m", timeout_s=5)
    _Handler.reply = "short: svc-a timeout to db-1"  # keeps every critical id, so the LLM's text is used
    compressor = ContextCompressor(budget_tokens=200, llm=client)
    compressor.fold(["2024-01-01 00:00:01 ERROR svc-a timeout talking to db-1"])
    assert compressor.render() == "short: svc-a timeout to db-1" and compressor.stats()["last_llm"]["tokens"] == 130

    _Handler.reply = json.dumps({"resource_type": "aws_s3_bucket_accelerate_configuration", "id_field": "bucketName",
                                 "mappings": [{"attribute": "status", "request_path": "AccelerateConfiguration.Status"}]})
    record = TraceRecord(event_id="e1", event_time=datetime(2024, 1, 1, tzinfo=UTC), event_source="s3.amazonaws.com",
                         event_name="PutBucketAccelerateConfiguration",
                         request={"bucketName": "b1", "AccelerateConfiguration": {"Status": "Enabled"}})
    inference = LLMInference(complete=client)
    intents, template = inference.infer(record)
    assert intents and template and inference.tokens_used == 130
    assert client.calls == 2 and client.tokens_used == 260
