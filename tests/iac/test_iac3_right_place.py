"""Where a drift is patched (issue 11, item 2): module callers, shared locals, jsonencode, inline S3 forms.

Fixture: tests/fixtures/iac/right_place/shared_module (see its SOURCE.md).
"""

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iac.config import Config
from iac.drift import DriftGroup
from iac.models import Intent, TraceRecord
from iac.patch import PatchOptions, patch_groups
from iac.state import load_state, new_state_document
from iac.verify import fmt_text

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "iac" / "right_place" / "shared_module"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture()
def project(tmp_path):
    dst = tmp_path / "proj"
    shutil.copytree(FIXTURE, dst)
    return dst


@pytest.fixture()
def state(tmp_path):
    entries = [
        {"type": "aws_security_group", "name": "api", "attributes": {"id": "sg-api", "tags": {"Project": "shop"}}},
        {"type": "aws_security_group", "name": "admin", "attributes": {"id": "sg-admin", "tags": {"Project": "shop"}}},
        {"type": "aws_s3_bucket", "name": "logs", "attributes": {"id": "shop-logs", "bucket": "shop-logs"}},
    ]
    for m in ("blue", "green"):
        entries += [{"type": "aws_instance", "name": "web", "module": f"module.{m}",
                     "attributes": {"id": f"i-{m}", "instance_type": "t3.micro", "tags": {"Name": m}}},
                    {"type": "aws_iam_role", "name": "web", "module": f"module.{m}",
                     "attributes": {"id": m, "name": m, "assume_role_policy": "{}"}}]
    p = tmp_path / "terraform.tfstate"
    p.write_text(json.dumps(new_state_document(entries)))
    return load_state(p)


def _group(address, rtype, *intents):
    rec = TraceRecord(event_id="e1", event_time=T0, event_source="ec2.amazonaws.com", event_name="X")
    for it in intents:
        it.address = address
        it.resource_type = it.resource_type or rtype
        it.records = [rec]
    return DriftGroup(key=address, address=address, resource_type=rtype, resource_id="x", intents=list(intents),
                      records=[rec])


def _evaluated(project, files, state):
    before = Config(project, state=state).all_resources()
    after = Config(project, texts={Path(p).resolve(): t for p, t in files.items()}, state=state).all_resources()
    return before, after


def test_shared_local_is_not_edited_for_one_use(project, state):
    g = _group("aws_security_group.api", "aws_security_group", Intent("tag_set", None, "", "tags", ("Owner", "ops")))
    res = patch_groups(project, [g], state, formatter=fmt_text)
    assert not res.needs_person and not res.errors, res.needs_person
    before, after = _evaluated(project, res.files, state)
    assert after["aws_security_group.api"]["tags"] == {"Project": "shop", "Owner": "ops"}
    assert after["aws_security_group.admin"] == before["aws_security_group.admin"]  # the other use did not move
    text = next(iter(res.files.values()))
    assert 'Project = "shop"' in text and "merge(local.common_tags" in text
    assert res.changes[0].strategy == "use_site"


def test_shared_local_source_edit_is_only_an_alternative(project, state):
    g = _group("aws_security_group.api", "aws_security_group", Intent("tag_set", None, "", "tags", ("Owner", "ops")))
    res = patch_groups(project, [g], state, formatter=fmt_text, options=PatchOptions(shared_target="source"))
    before, after = _evaluated(project, res.files, state)
    assert after["aws_security_group.admin"] != before["aws_security_group.admin"]  # why it is not the default


def test_shared_module_internals_are_never_edited(project, state):
    g = _group("module.blue.aws_instance.web", "aws_instance", Intent("set", None, "", "instance_type", "t3.large"))
    res = patch_groups(project, [g], state, formatter=fmt_text)
    assert not res.files  # nothing written inside modules/web, which green also uses
    assert res.needs_person and "shared by 2 module calls" in res.needs_person[0]


def test_value_from_module_argument_is_patched_at_the_caller_with_jsonencode(project, state):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                   "Principal": {"Service": "ec2.amazonaws.com"}}]}
    g = _group("module.blue.aws_iam_role.web", "aws_iam_role", Intent("set", None, "", "assume_role_policy", doc))
    res = patch_groups(project, [g], state, formatter=fmt_text)
    assert not res.needs_person and not res.errors, res.needs_person
    assert [p.name for p in res.files] == ["main.tf"] and Path(next(iter(res.files))).parent == project.resolve()
    text = next(iter(res.files.values()))
    blue = text.split('module "green"')[0].split('module "blue"')[1]
    assert "role_policy = jsonencode(" in blue  # the module's variable is a string: an HCL object would not apply
    after = Config(project, texts={Path(p).resolve(): t for p, t in res.files.items()}, state=state).all_resources()
    assert json.loads(after["module.blue.aws_iam_role.web"]["assume_role_policy"]) == doc
    assert after["module.green.aws_iam_role.web"]["assume_role_policy"] == "{}"


def test_inline_versioning_block_is_patched_not_contradicted(project, state):
    it = Intent("sub_set", None, "aws_s3_bucket_versioning", "versioning_configuration.status", "Enabled",
                resource_id="shop-logs")
    g = _group("aws_s3_bucket.logs", "aws_s3_bucket", it)
    res = patch_groups(project, [g], state, formatter=fmt_text)
    assert not res.needs_person and not res.errors, res.needs_person
    text = next(iter(res.files.values()))
    assert "aws_s3_bucket_versioning" not in text
    assert "enabled = true" in text and "enabled = false" not in text


def test_new_block_is_fmt_clean_without_the_formatter(project, state):
    """Blocks we write are laid out as terraform fmt would (a slow fmt under load once left one unaligned)."""
    from iac.verify import check_fmt_of_patch_lines

    attrs = {"name": "ops-hotfix-1", "description": "created in console", "vpc_id": "vpc-1",
             "tags": {"Name": "ops-hotfix-1"}, "__rules__": {("ingress", "tcp", 443, 443, "cidr:10.0.0.0/8")}}
    it = Intent("create", None, "aws_security_group", "", attrs, resource_id="sg-new")
    g = DriftGroup(key="new:sg-new", address=None, resource_type="aws_security_group", resource_id="sg-new",
                   intents=[it], records=[], new_resource=True)
    res = patch_groups(project, [g], state, formatter=None)
    assert not res.errors and not res.needs_person
    ok, why = check_fmt_of_patch_lines(project, res.files)
    assert ok, why + "\n" + res.diff


def test_policy_edit_changes_only_the_drifted_line(lambda_dir, tmp_path):
    """One principal added to a jsonencode() policy: one line changes, the policy's layout stays (issue 11, item 1)."""
    import difflib

    st = tmp_path / "s.tfstate"
    st.write_text(json.dumps(new_state_document([
        {"type": "aws_iam_role", "name": "lambda_exec", "attributes": {"id": "serverless_lambda", "name": "serverless_lambda"}}])))
    doc = {"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Sid": "",
                                                    "Principal": {"Service": ["lambda.amazonaws.com",
                                                                              "edgelambda.amazonaws.com"]}}]}
    g = _group("aws_iam_role.lambda_exec", "aws_iam_role", Intent("set", None, "", "assume_role_policy", doc))
    res = patch_groups(lambda_dir, [g], load_state(st), formatter=fmt_text)
    assert not res.errors and not res.needs_person
    (path, text), = res.files.items()
    changed = [(x[0], x[2:]) for x in difflib.ndiff(Path(path).read_text().splitlines(), text.splitlines())
               if x[:1] in "+-"]
    assert changed == [("-", '        Service = "lambda.amazonaws.com"'),
                       ("+", '        Service = ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]')]
    after = Config(lambda_dir, texts={Path(p).resolve(): t for p, t in res.files.items()}).all_resources()
    assert json.loads(after["aws_iam_role.lambda_exec"]["assume_role_policy"]) == doc


def test_for_each_instance_drift_edits_its_map_entry(tmp_path):
    proj = tmp_path / "fe"
    shutil.copytree(FIXTURE.parent / "for_each", proj)
    st = tmp_path / "fe.tfstate"
    st.write_text(json.dumps(new_state_document([
        {"type": "aws_instance", "name": "app", "index": k, "attributes": {"id": f"i-{k}", "instance_type": t}}
        for k, t in (("alpha", "t3.micro"), ("beta", "t3.small"))])))
    g = _group('aws_instance.app["beta"]', "aws_instance", Intent("set", None, "", "instance_type", "m5.large"))
    res = patch_groups(proj, [g], load_state(st), formatter=fmt_text)
    assert not res.needs_person and not res.errors, res.needs_person
    (path, text), = res.files.items()
    assert 'instance_type = "m5.large"' in text.split("beta")[1].split("}")[0]  # beta's entry
    assert 'instance_type = "t3.micro"' in text.split("beta")[0]  # alpha's entry untouched
    assert "instance_type = each.value.instance_type" in text  # not hard-coded on the resource
    servers = Config(proj, texts={Path(path).resolve(): text}).scope("").variables["servers"]
    assert servers == {"alpha": {"instance_type": "t3.micro"}, "beta": {"instance_type": "m5.large"}}


def test_a_variable_read_once_plus_its_validation_is_not_shared(project, state):
    """``var.name`` appears in its own validation block and in two attributes; the validation is not a use."""
    from iac.config import Config as _Config
    from iac.patch import Patcher

    p = Patcher(_Config(project, state=state), state)
    assert p._uses("module.blue", "var.name") == 2  # the instance's Name tag and the role's name
    assert p._uses("", "local.web_port") == 2 and p._uses("", "local.common_tags") == 2
