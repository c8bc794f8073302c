"""Bad event files: one line naming the file and the problem, exit status 2, no traceback (issue 12, part 6)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from causal.data import COLUMNS, EventFileError, load_events, write_events
from causal.synthetic import simulate_events


@pytest.fixture()
def rows():
    return simulate_events(20, seed=5).frame


def test_missing_columns_are_named(tmp_path, rows):
    path = tmp_path / "events.csv"
    write_events(rows, path)
    frame = rows.drop(columns=["cpu_util", "sku"])
    frame.to_csv(path, index=False)
    with pytest.raises(EventFileError) as err:
        load_events(path)
    message = str(err.value)
    assert str(path) in message and "'cpu_util'" in message and "'sku'" in message
    assert "\n" not in message


def test_missing_fields_in_json_lines_are_named(tmp_path, rows):
    path = tmp_path / "events.jsonl"
    rows.drop(columns=["vm_count"]).to_json(path, orient="records", lines=True)
    with pytest.raises(EventFileError, match="vm_count"):
        load_events(path)


def test_byte_order_mark_is_accepted(tmp_path, rows):
    path = tmp_path / "excel.csv"
    text = rows.loc[:, list(COLUMNS)].to_csv(index=False)
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    result = load_events(path)
    assert result.n_valid == len(rows) and result.errors == []


def test_encoding_error_names_the_line(tmp_path, rows):
    path = tmp_path / "latin1.csv"
    write_events(rows, path)
    lines = path.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"gen", b"g\xe9n", 1)  # a Latin-1 e-acute on line 5
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(EventFileError, match=r"line 5: byte 0xe9 .* not UTF-8"):
        load_events(path)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(EventFileError, match="empty"):
        load_events(path)


def test_missing_file(tmp_path):
    with pytest.raises(EventFileError, match="file not found"):
        load_events(tmp_path / "nope.csv")


def test_no_valid_rows_names_the_first_reason(tmp_path, rows):
    from causal.train import train

    path = tmp_path / "events.csv"
    write_events(rows.assign(action="format_disk"), path)
    with pytest.raises(EventFileError, match=r"no valid rows \(20 rejected; first: line 2: action"):
        train(path, registry=None, run_refutation=False)


def _cli(tmp_path, monkeypatch, *args):
    from services.cli import app

    monkeypatch.setenv("AIOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'aiops.db'}")
    return CliRunner().invoke(app, ["causal", *args])


@pytest.mark.parametrize("command", ["train", "import-events"])
@pytest.mark.parametrize("case", ["missing_file", "empty", "columns", "encoding"])
def test_cli_exits_2_with_one_line(tmp_path, monkeypatch, rows, command, case):
    path = tmp_path / "events.csv"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "columns":
        rows.drop(columns=["hour_of_day"]).to_csv(path, index=False)
    elif case == "encoding":
        write_events(rows, path)
        path.write_bytes(path.read_bytes() + b"\xff\n")
    args = ["train", "--data", str(path)] if command == "train" else ["import-events", str(path)]
    result = _cli(tmp_path, monkeypatch, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and str(path) in error_lines[0]
