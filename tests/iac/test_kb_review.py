"""Knowledge base on a real Chroma (in-memory client) and review commits on a real git repository."""

import json
from datetime import UTC, datetime

import chromadb
import git
import pytest

from iac.kb import KnowledgeBase
from iac.llm import LLMInference
from iac.models import Change, Proposal, TraceRecord, Workspace
from iac.review import approve, reject

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def accel_record(bucket="b1", status="Enabled"):
    return TraceRecord(event_id="e1", event_time=T0, event_source="s3.amazonaws.com",
                       event_name="PutBucketAccelerateConfiguration",
                       request={"bucketName": bucket, "AccelerateConfiguration": {"Status": status}})


TEMPLATE = {"event": "PutBucketAccelerateConfiguration", "service": "s3",
            "resource_type": "aws_s3_bucket_accelerate_configuration", "id_field": "bucketName",
            "mappings": [{"attribute": "status", "request_path": "AccelerateConfiguration.Status"}]}


@pytest.fixture()
def kb(embedding, request):
    client = chromadb.EphemeralClient()
    return KnowledgeBase(client, embedding_function=embedding, collection=f"t_{abs(hash(request.node.name))}")


def test_unknown_call_learned_from_approved_template(kb):
    assert kb.suggest(accel_record()) is None
    kb.add_template(TEMPLATE)
    intents = kb.suggest(accel_record(bucket="other", status="Suspended"))
    assert intents and intents[0].resource_id == "other" and intents[0].value == "Suspended"
    assert intents[0].source == "kb"


def test_rank_prefers_approved_strategy(kb):
    rec = accel_record()
    a = Proposal(id="a", addresses=["x"], diff="", changes=[Change("f", "x", "a", "e", "literal")], records=[rec], rank_note="primary")
    b = Proposal(id="b", addresses=["x"], diff="", changes=[Change("f", "x", "a", "e", "tfvars")], records=[rec], rank_note="alt")
    kb.record_verdict(b, approved=True)
    kb.record_verdict(a, approved=False, reason="wrong file")
    assert [p.id for p in kb.rank([a, b])] == ["b", "a"]


def test_llm_fallback_is_deterministic_on_failure():
    def unreachable(prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]:
        raise ConnectionError("connection refused")

    llm = LLMInference(complete=unreachable)
    intents, template = llm.infer(accel_record())
    assert intents is None and template is None and llm.calls == 1 and llm.tokens_used == 0


def test_llm_answer_becomes_intents_and_tokens_are_counted():
    import json

    answer = json.dumps(TEMPLATE)
    seen: list[int] = []

    def model(prompt: str, *, max_tokens: int, system: str = "") -> tuple[str, int]:
        seen.append(max_tokens)
        return "sure: " + answer, 42

    llm = LLMInference(complete=model, max_tokens=300)
    intents, template = llm.infer(accel_record())
    assert template["resource_type"] == "aws_s3_bucket_accelerate_configuration" and seen == [300]
    assert intents and intents[0].source == "llm" and intents[0].value == "Enabled"
    assert llm.tokens_used == 42 and llm.calls == 1


def test_approve_commits_on_new_branch_only(tmp_path, kb):
    repo = git.Repo.init(tmp_path, initial_branch="main")
    tf = tmp_path / "main.tf"
    tf.write_text('resource "aws_s3_bucket" "b" {\n  bucket = "b1"\n}\n')
    repo.index.add(["main.tf"])
    repo.index.commit("init")
    p = Proposal(id="p1", addresses=["aws_s3_bucket.b"], diff="d", records=[accel_record()],
                 changes=[Change("main.tf", "aws_s3_bucket.b", "tags", "add tag", "insert")],
                 files={tf: 'resource "aws_s3_bucket" "b" {\n  bucket = "b1"\n  tags   = { a = "b" }\n}\n'},
                 instructions=["terraform import x y"])
    ws = Workspace(terraform_dir=tmp_path, state_file=tmp_path / "s.tfstate", trace_source=str(tmp_path))
    branch = approve(p, ws, kb=kb, reviewer="bob")
    assert repo.active_branch.name == "main" and "tags" not in tf.read_text()
    committed = repo.git.show(f"{branch}:main.tf")
    assert 'tags   = { a = "b" }' in committed
    assert not repo.remotes
    with pytest.raises(ValueError):
        approve(p, ws, branch="main")
    reject(p, reason="tag belongs to the module", kb=kb)
    metas = kb.collection.get()["metadatas"]
    assert {m["verdict"] for m in metas} == {"approved", "rejected"}
    assert json.loads(metas[0]["templates"]) == []
