"""Bad trace, state and HCL input: keep what is good, name the file and where it broke, never read as empty."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from iac.traces import TraceReadReport, TraceSourceError, read_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iac"
RAWS = json.loads((FIXTURES / "cloudtrail" / "aws.persistence.iam-create-admin-user.json").read_text())


def _records_doc(raws: list) -> str:
    return json.dumps({"Records": raws}, indent=2)


@pytest.mark.parametrize("form", ["records", "array", "records.gz"])
def test_a_truncated_trace_keeps_the_records_before_the_cut(tmp_path, form):
    full = _records_doc(RAWS) if form.startswith("records") else json.dumps(RAWS, indent=2)
    last_start = full.rindex('"eventVersion"')  # cut inside the last event
    cut = full[:last_start + 5]
    path = tmp_path / ("t.json.gz" if form.endswith(".gz") else "t.json")
    path.write_bytes(gzip.compress(cut.encode()) if form.endswith(".gz") else cut.encode())
    report = TraceReadReport()
    records = read_path(path, report=report)
    assert len(records) == len(RAWS) - 1 >= 1
    [problem] = report.malformed
    assert "truncated" in problem and str(path) in problem and "offset" in problem
    assert f"kept the {len(RAWS) - 1} event(s)" in problem


def test_a_truncated_gzip_stream_keeps_what_decompresses(tmp_path):
    data = gzip.compress(_records_doc(RAWS * 20).encode())
    path = tmp_path / "t.json.gz"
    path.write_bytes(data[: int(len(data) * 0.8)])
    report = TraceReadReport()
    records = read_path(path, report=report)
    assert 0 < len(records) < len(RAWS) * 20
    assert any("truncated gzip" in p for p in report.malformed)


def test_a_bad_json_line_is_skipped_and_named(tmp_path):
    lines = [json.dumps(r) for r in RAWS]
    lines.insert(1, '{"eventName": "broken", ')
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines))
    report = TraceReadReport()
    assert len(read_path(path, report=report)) == len(RAWS)
    [problem] = report.malformed
    assert "line 2" in problem and str(path) in problem


def test_a_missing_trace_path_is_an_error_not_an_empty_trace(tmp_path):
    with pytest.raises(TraceSourceError, match="does not exist"):
        read_path(tmp_path / "nope")


def test_state_errors_name_the_file_and_line(tmp_path):
    from iac.state import StateFileError, load_state

    good = {"version": 4, "terraform_version": "1.9.0", "resources": []}
    truncated = tmp_path / "terraform.tfstate"
    truncated.write_text(json.dumps(good, indent=2)[:-10])
    with pytest.raises(StateFileError, match=r"terraform\.tfstate:\d+:\d+: not valid JSON"):
        load_state(truncated)
    with pytest.raises(StateFileError, match="does not exist"):
        load_state(tmp_path / "missing.tfstate")
    old = tmp_path / "v3.tfstate"
    old.write_text(json.dumps({"version": 3}))
    with pytest.raises(StateFileError, match="v3.tfstate: unsupported state version 3"):
        load_state(old)
    bom = tmp_path / "bom.tfstate"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(good).encode())
    assert load_state(bom).resources == []


def test_an_hcl_syntax_error_names_file_line_and_column(tmp_path):
    from iac.config import Config
    from iac.hcl import HCLSyntaxError

    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n')
    (tmp_path / "broken.tf").write_text('variable "a" {\n  default = "x"\n}\n\nresource "aws_instance" "i" {\n'
                                        '  ami = "ami-123\n}\n')
    with pytest.raises(HCLSyntaxError, match=r"broken\.tf:6:17: newline in string"):
        Config(tmp_path)


@pytest.mark.parametrize("expr,col", [("[1 2]", 13), ("{ a = 1, b }", 21)])
def test_an_error_inside_an_expression_names_file_line_and_column(tmp_path, expr, col):
    """Expressions are parsed lazily (on first evaluation): their errors still name file:line:column, not offsets."""
    from iac.config import Config
    from iac.hcl import HCLSyntaxError

    (tmp_path / "main.tf").write_text(f'resource "aws_instance" "a" {{\n  ami = "ami-1"\n  tags = {expr}\n}}\n')
    with pytest.raises(HCLSyntaxError, match=rf"main\.tf:3:{col}: ") as info:
        Config(tmp_path).all_resources()
    assert "main.tf:3:" in str(info.value)
