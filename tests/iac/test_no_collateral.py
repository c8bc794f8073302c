"""A patch changes only the drift's lines: legacy interpolation and odd alignment elsewhere survive."""

import json
from datetime import UTC, datetime
from pathlib import Path

from iac.drift import DriftGroup
from iac.models import Intent, TraceRecord
from iac.patch import collateral_lines, format_edited_lines, patch_groups
from iac.state import load_state, new_state_document
from iac.verify import check_fmt_of_patch_lines, fmt_text

T0 = datetime(2025, 1, 1, tzinfo=UTC)

MAIN = '''resource "aws_subnet" "x" {
  vpc_id = "vpc-1"
  cidr_block = "10.0.1.0/24"
}

resource "aws_instance" "web" {
  ami           = "ami-123"
  instance_type = "t3.micro"
  subnet_id = "${aws_subnet.x.id}"
  monitoring      = false
  tags = {
    Name = "web"
    Team    = "a"
  }
}

output "subnet" {
  value = "${aws_subnet.x.id}"
}
'''


def _group(address, rtype, *intents):
    rec = TraceRecord(event_id="e1", event_time=T0, event_source="ec2.amazonaws.com", event_name="X")
    for it in intents:
        it.address, it.resource_type, it.records = address, rtype, [rec]
    return DriftGroup(key=address, address=address, resource_type=rtype, resource_id="i-1",
                      intents=list(intents), records=[rec])


def _project(tmp_path: Path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.tf").write_text(MAIN)
    sp = tmp_path / "terraform.tfstate"
    sp.write_text(json.dumps(new_state_document([
        {"type": "aws_subnet", "name": "x", "attributes": {"id": "subnet-1"}},
        {"type": "aws_instance", "name": "web", "attributes": {"id": "i-1", "instance_type": "t3.micro",
                                                               "tags": {"Name": "web", "Team": "a"}}},
    ])))
    return root, load_state(sp)


def _changed(diff: str) -> list[str]:
    return [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_literal_edit_touches_only_the_drifted_line(tmp_path):
    assert fmt_text(MAIN) != MAIN  # the fixture is not fmt-clean: whole-file fmt would rewrite it
    root, state = _project(tmp_path)
    g = _group("aws_instance.web", "aws_instance", Intent("set", None, "", "instance_type", "t3.large"))
    res = patch_groups(root, [g], state, formatter=fmt_text)
    assert not res.errors and not res.needs_person
    assert _changed(res.diff) == ['-  instance_type = "t3.micro"', '+  instance_type = "t3.large"']
    text = res.files[(root / "main.tf").resolve()]
    assert text.count('"${aws_subnet.x.id}"') == 2 and "  monitoring      = false" in text
    ok, msg = check_fmt_of_patch_lines(root, res.files)
    assert ok, msg


def test_new_tag_and_new_attribute_keep_neighbours(tmp_path):
    root, state = _project(tmp_path)
    g = _group("aws_instance.web", "aws_instance", Intent("tag_set", None, "", "tags", ("Owner", "ops")),
               Intent("set", None, "", "ebs_optimized", True))
    res = patch_groups(root, [g], state, formatter=fmt_text)
    assert not res.errors and not res.needs_person
    changed = _changed(res.diff)
    assert all(ln.startswith("+") for ln in changed), changed  # only additions, no rewritten neighbours
    assert {ln.split("=")[0].strip("+ ") for ln in changed} == {"Owner", "ebs_optimized"}


def test_format_edited_lines_and_collateral_check():
    original = 'a = "${x}"\nb  = 1\n'
    edited = 'a = "${x}"\nb  = 2\nc=3\n'
    formatted = 'a = x\nb = 2\nc = 3\n'
    final = format_edited_lines(original, edited, formatted)
    assert final == 'a = "${x}"\nb = 2\nc = 3\n'
    assert collateral_lines(original, edited, final) == []
    assert collateral_lines(original, edited, formatted) == [1]  # whole-file fmt is flagged
