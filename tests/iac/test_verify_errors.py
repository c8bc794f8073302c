"""Live reads: only a service's "not found" codes read as "absent"; everything else is an error that
reaches the proposal's verification (a throttled or denied read must never look like a deletion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber

from iac.config import Config
from iac.state import load_state, new_state_document
from iac.verify import (
    NOT_FOUND_CODES,
    LiveReader,
    LiveReadError,
    is_not_found,
    service_of,
    verify_against_live,
)
from sim.cloud import boto_session, free_port

pytestmark = pytest.mark.integration


@pytest.fixture()
def reader(moto_endpoint: str) -> LiveReader:
    return LiveReader(boto_session(), endpoint_url=moto_endpoint)


@pytest.mark.parametrize("rtype,ident", [
    ("aws_instance", "i-0123456789abcdef0"),
    ("aws_security_group", "sg-0123456789abcdef0"),
    ("aws_vpc", "vpc-0123456789abcdef0"),
    ("aws_subnet", "subnet-0123456789abcdef0"),
    ("aws_s3_bucket", "nsync-no-such-bucket"),
    ("aws_s3_bucket_versioning", "nsync-no-such-bucket"),
    ("aws_iam_role", "nsync-no-such-role"),
    ("aws_db_instance", "nsync-no-such-db"),
    ("aws_db_subnet_group", "nsync-no-such-group"),
    ("aws_lambda_function", "nsync-no-such-function"),
    ("aws_autoscaling_group", "nsync-no-such-asg"),
    ("aws_cloudwatch_log_group", "/nsync/no-such-group"),
    ("aws_lb_listener", "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/nope/50dc6c495c0c9188/f2f7dc8efc522ab2"),
])
def test_missing_resources_read_as_absent_on_moto(reader: LiveReader, rtype: str, ident: str) -> None:
    assert reader.attributes(rtype, ident) is None
    assert reader.exists(rtype, ident) is False


def test_unset_s3_sub_configurations_read_as_absent(reader: LiveReader) -> None:
    s3 = reader.client("s3")
    s3.create_bucket(Bucket="nsync-verify-bare")
    assert reader.attributes("aws_s3_bucket", "nsync-verify-bare") == {"bucket": "nsync-verify-bare", "tags": {}}
    assert reader.attributes("aws_s3_bucket_policy", "nsync-verify-bare") is None
    assert reader.attributes("aws_s3_bucket_public_access_block", "nsync-verify-bare") is None


def _stubbed(service: str, code: str, method: str, status: int = 400) -> LiveReader:
    """A reader whose ``service`` client answers ``method`` with the error ``code``."""
    reader = LiveReader(boto_session(), endpoint_url="http://127.0.0.1:1")
    client = reader.client(service)
    stub = Stubber(client)
    stub.add_client_error(method, service_error_code=code, service_message=f"{code} (stubbed)",
                          http_status_code=status)
    stub.activate()
    return reader


@pytest.mark.parametrize("rtype,service,method,code,status", [
    ("aws_instance", "ec2", "describe_instances", "RequestLimitExceeded", 503),
    ("aws_iam_role", "iam", "get_role", "Throttling", 400),
    ("aws_iam_role", "iam", "get_role", "AccessDenied", 403),
    ("aws_s3_bucket", "s3", "head_bucket", "403", 403),
    ("aws_db_instance", "rds", "describe_db_instances", "AccessDenied", 403),
    ("aws_lambda_function", "lambda", "get_function", "ExpiredTokenException", 403),
])
def test_throttling_and_denied_are_errors_not_absence(rtype, service, method, code, status) -> None:
    reader = _stubbed(service, code, method, status)
    with pytest.raises(LiveReadError) as err:
        reader.attributes(rtype, "x-1")
    assert err.value.code == code and err.value.service == service
    with pytest.raises(LiveReadError):
        _stubbed(service, code, method, status).exists(rtype, "x-1")


def test_connection_errors_are_errors() -> None:
    reader = LiveReader(boto_session(), endpoint_url=f"http://127.0.0.1:{free_port()}")
    reader._clients["ec2"] = boto_session().client(  # one attempt, short timeout: nothing listens there
        "ec2", endpoint_url=reader.endpoint_url, config=BotoConfig(retries={"total_max_attempts": 1}, connect_timeout=1))
    with pytest.raises(LiveReadError) as err:
        reader.attributes("aws_vpc", "vpc-1")
    assert err.value.code == "EndpointConnectionError"


def test_not_found_table_is_per_service() -> None:
    from botocore.exceptions import ClientError

    nosuch = ClientError({"Error": {"Code": "NoSuchEntity", "Message": "x"}}, "GetRole")
    assert is_not_found("iam", nosuch) and not is_not_found("s3", nosuch)
    assert service_of("aws_s3_bucket_policy") == "s3" and service_of("aws_db_subnet_group") == "rds"
    assert all(not any("Throttl" in c or "Denied" in c for c in codes) for codes in NOT_FOUND_CODES.values())


def test_a_failed_read_reaches_the_verification_result(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_instance" "web" {\n  instance_type = "t3.micro"\n}\n')
    state_file = tmp_path / "terraform.tfstate"
    state_file.write_text(json.dumps(new_state_document(
        [{"type": "aws_instance", "name": "web", "attributes": {"id": "i-0abc", "instance_type": "t3.micro"}}])))
    state = load_state(state_file)
    reader = _stubbed("ec2", "RequestLimitExceeded", "describe_instances", 503)
    result = verify_against_live(Config(tmp_path, state=state), state, reader,
                                 [("aws_instance.web", "instance_type", "")])
    assert result["ok"] is False and result["status"] == "error" and not result["mismatches"]
    assert result["errors"][0]["code"] == "RequestLimitExceeded"
    assert "RequestLimitExceeded" in result["reason"]


def test_verify_proposal_reports_error_status(tmp_path: Path, monkeypatch) -> None:
    """The proposal's own verification says "error" (not "failed", not "ok") with the reason."""
    import importlib

    from iac.models import Proposal, Workspace

    rec = importlib.import_module("iac.reconcile")
    monkeypatch.setattr(rec, "drift_keys", lambda intents: [("aws_instance.web", "instance_type", "")])
    (tmp_path / "main.tf").write_text('resource "aws_instance" "web" {\n  instance_type = "t3.micro"\n}\n')
    state_file = tmp_path / "terraform.tfstate"
    state_file.write_text(json.dumps(new_state_document(
        [{"type": "aws_instance", "name": "web", "attributes": {"id": "i-0abc", "instance_type": "t3.micro"}}])))
    proposal = Proposal(id="p1", addresses=["aws_instance.web"], diff="", changes=[], records=[], files={})
    ws = Workspace(terraform_dir=tmp_path, state_file=state_file, trace_source=str(tmp_path))
    reader = _stubbed("ec2", "Throttling", "describe_instances", 400)
    out = rec.verify_proposal(proposal, ws, load_state(state_file), reader=reader)
    assert out["status"] == "error" and out["ok"] is False and "Throttling" in out["reason"]
    assert out["live"]["errors"][0]["address"] == "aws_instance.web"
