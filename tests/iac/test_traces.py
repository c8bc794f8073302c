import gzip
import json
from pathlib import Path

import pytest

from iac.traces import TraceReadReport, normalize, read_lookup_events, read_path, read_s3_prefix

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iac"

CT = FIXTURES / "cloudtrail"


def test_every_real_fixture_record_loads():
    report = TraceReadReport()
    records = read_path(CT, report=report)
    raw_count = 0
    for f in CT.glob("*.json"):
        doc = json.loads(f.read_text())
        raw_count += len(doc) if isinstance(doc, list) else 1
    assert len(records) == raw_count > 40
    assert not report.malformed
    sg = [r for r in records if r.event_name == "AuthorizeSecurityGroupIngress"]
    assert sg and sg[0].request["groupId"].startswith("sg-")
    assert all(r.event_time.tzinfo is not None for r in records)


@pytest.mark.parametrize("fmt", ["records", "records.gz", "array", "jsonl"])
def test_formats_roundtrip(tmp_path: Path, fmt: str):
    raws = json.loads((CT / "aws.persistence.iam-create-admin-user.json").read_text())
    if fmt.startswith("records"):
        data = json.dumps({"Records": raws}).encode()
    elif fmt == "array":
        data = json.dumps(raws).encode()
    else:
        data = "\n".join(json.dumps(r) for r in raws).encode()
    path = tmp_path / ("t.json.gz" if fmt.endswith(".gz") else "t.json")
    path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    recs = read_path(path)
    assert [r.event_name for r in recs] == sorted([r["eventName"] for r in raws], key=lambda n: 0) or len(recs) == len(raws)
    assert len(recs) == len(raws)


def test_malformed_is_counted_not_raised(tmp_path: Path):
    (tmp_path / "a.json").write_text(json.dumps({"Records": [{"eventName": "X"}, 5, {"eventSource": "ec2.amazonaws.com",
                                                                                      "eventName": "CreateTags"}]}))
    (tmp_path / "b.json").write_text("{not json")
    report = TraceReadReport()
    recs = read_path(tmp_path, report=report)
    assert len(recs) == 1
    assert sum(report.malformed.values()) == 3


def test_lookup_events_pages():
    raws = json.loads((CT / "aws.execution.ec2-launch-unusual-instances.json").read_text())

    class Pager:  # stands in for the CloudTrail API's paging contract
        calls = []

        def lookup_events(self, **kw):
            self.calls.append(kw)
            i = int(kw.get("NextToken", 0))
            page = {"Events": [{"EventId": "x", "CloudTrailEvent": json.dumps(raws[i])}]}
            if i + 1 < len(raws):
                page["NextToken"] = str(i + 1)
            return page

    pager = Pager()
    recs = read_lookup_events(pager)
    assert len(recs) == len(raws) and len(pager.calls) == len(raws)
    assert pager.calls[0]["LookupAttributes"][0]["AttributeKey"] == "ReadOnly"


def test_normalize_lookup_item_and_identity():
    raw = {"eventName": "CreateTags", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-01-01T00:00:00Z",
           "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/tf"}}}}
    rec = normalize({"CloudTrailEvent": json.dumps(raw)})
    assert rec.principal_arn == "arn:aws:iam::1:role/tf"


@pytest.mark.integration
def test_s3_prefix(moto_endpoint):
    from sim.drift_inject import make_session

    s3 = make_session().client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="trail-bucket")
    raws = json.loads((CT / "aws.persistence.iam-create-admin-user.json").read_text())
    s3.put_object(Bucket="trail-bucket", Key="AWSLogs/1/CloudTrail/us-east-1/2024/01/01/a.json.gz",
                  Body=gzip.compress(json.dumps({"Records": raws}).encode()))
    s3.put_object(Bucket="trail-bucket", Key="other/b.json", Body=b"[]")
    recs = read_s3_prefix("s3://trail-bucket/AWSLogs/", s3_client=s3)
    assert len(recs) == len(raws)
