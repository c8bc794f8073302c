"""Severity from general conventions, and failures that never hide in routine templates.

Every fixture here is written for the test (no loghub lines): each names the convention or the
loss from issue 13 that it pins down.
"""

from __future__ import annotations

from memory.compressor import ContextCompressor
from memory.entities import extract_entities
from memory.notation import expand_text
from memory.severity import ERROR, FATAL, INFO, WARN, classify, digit_severity, digit_slot
from memory.tokens import count_tokens


def _critical_section(out: str) -> str:
    return out.split("## errors and warnings", 1)[1].split("## routine templates", 1)[0]


def test_single_letter_levels_logcat_and_glog():
    # logcat threadtime / brief and glog/klog headers carry the level as one letter.
    assert classify("<#> <#> <#> <#> W PowerManager: brightness override <#>").severity == WARN
    assert classify("<#> <#> <#> <#> E AudioFlinger: buffer underrun").severity == ERROR
    assert classify("<#> <#> <#> <#> I ActivityManager: Start proc <#>").severity == INFO
    assert classify("W/Sensors( <#>): offset drift <#>").severity == WARN
    assert classify("E<#> <#> <#> controller.go:<#>] sync loop stalled").severity == ERROR
    assert classify("F<#> <#> <#> main.go:<#>] giving up").severity == FATAL
    # A capital letter inside prose is not a level.
    assert classify("Started A new session for user bob").severity < WARN


def test_single_letter_warnings_are_not_routine():
    lines = [f"03-17 16:13:{i:02d}.811  1702  2395 I ActivityManager: Start proc {100 + i}" for i in range(40)]
    lines += [f"03-17 16:14:{i:02d}.100  1702  2395 W PowerManager: brightness override {i}" for i in range(5)]
    lines += ["I0101 12:00:00.123456    1 controller.go:12] synced 3 pods"] * 20
    lines += ["E0101 12:00:01.123456    1 controller.go:40] sync loop stalled for pod web-3"]
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(lines)
    out = c.render()
    critical = _critical_section(out)
    assert "x5" in critical and "brightness override" in critical
    assert "sync loop stalled for pod web-3" in critical
    assert c.stats()["critical_templates"] == 2


def test_aborted_failed_invalid_lines_are_headlines_not_routine():
    lines = []
    for i in range(30):
        lines += [f"2024-01-01 10:00:{i:02d} worker-2 Command has completed {i}", f"2024-01-01 10:01:{i:02d} job {i} finished"]
        lines += [f"2024-01-01 10:02:{i:02d} config loaded at line {i}"]
    lines += ["2024-01-01 10:03:00 worker-2 Command has aborted 31", "2024-01-01 10:03:01 job 77 failed"]
    lines += ["2024-01-01 10:03:02 config invalid at line 12"]
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(lines)
    out = c.render()
    critical = _critical_section(out)
    routine = out.split("## routine templates", 1)[1]
    for word in ("aborted", "failed", "invalid"):
        assert word in critical, out
        assert word not in routine, out
    assert "x30" in routine  # the routine shapes are still folded with their counts


def test_merged_cluster_failing_variant_gets_its_own_headline_with_count_and_span():
    # Without the split, Drain merges these into "node-<*> service sshd state <*>" and the one
    # failure shows only as a variant of a routine template.
    lines = [f"Jun 14 15:{i // 60:02d}:{i % 60:02d} node-3 service sshd state running" for i in range(50)]
    lines += ["Jun 14 16:00:00 node-4 service sshd state failed", "Jun 14 16:00:05 node-4 service sshd state failed"]
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(lines)
    out = c.render()
    critical = _critical_section(out)
    first = critical.strip().splitlines()[0]
    assert first.startswith("x2 [Jun 14 16:00:00..Jun 14 16:00:05]") and "state failed" in first, out
    assert "running" not in critical
    assert "x50" in out.split("## routine templates", 1)[1]


def test_long_node_list_is_packed_and_node_names_are_ids():
    nodes = [f"an{n}" for n in range(140, 272)]  # 132 nodes
    line = "Jun 14 15:16:01 slurmctld[77]: error: nodes not responding: " + " ".join(nodes)
    c = ContextCompressor(budget_tokens=10**9)
    c.fold([line, "Jun 14 15:16:02 slurmctld[77]: cycle done"])
    out = c.render()
    assert "an{140..271}" in out
    assert "[notation]" in out
    assert set(nodes) <= expand_text(out)
    assert count_tokens(out) < count_tokens(line) / 2
    assert ("host", "an142") in extract_entities("down: an142")


def test_generalised_entities():
    found = dict((v, k) for k, v in extract_entities(
        "node-7 redis-cluster-0 web-7f8d9c6b5-x2k4q arn:aws:iam::123456789012:role/ops /dev/sda1"
    ))
    assert found == {
        "node-7": "node", "redis-cluster-0": "host", "web-7f8d9c6b5-x2k4q": "pod",
        "arn:aws:iam::123456789012:role/ops": "arn", "/dev/sda1": "path",
    }  # fmt: skip


def test_digit_borne_severity_http_exit_code_syslog_pri():
    slot = digit_slot('<#>.<#>.<#>.<#> - - [x] "GET /a HTTP/<#>" <#> <#>')
    assert slot is not None and slot[2] == "http"
    assert digit_severity("http", "503") == ERROR and digit_severity("http", "200") == INFO
    assert digit_severity("exit", "137") == ERROR and digit_severity("exit", "0") == INFO
    assert digit_severity("pri", "11>Jan") == ERROR and digit_severity("pri", "14>Jan") == INFO
    lines = [f'10.0.0.{i} - - [01/Jan/2024:10:00:00 +0000] "GET /api HTTP/1.1" 200 512' for i in range(30)]
    lines += ['10.0.0.9 - - [01/Jan/2024:10:00:01 +0000] "GET /api HTTP/1.1" 503 0']
    lines += ["task 4 exited with code 0"] * 5 + ["task 5 exited with code 137"]
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(lines)
    critical = _critical_section(c.render())
    assert " 503 " in critical and "code 137" in critical
    assert " 200 " not in critical and "code 0" not in critical


def test_negated_failure_words_are_routine():
    assert classify("sync finished with no errors").severity < WARN
    assert classify("backup finished without failure").severity < WARN


def test_exit_code_one_after_zero_is_still_a_failure():
    c = ContextCompressor(budget_tokens=10**9)
    c.fold(["step build exited with code 0", "step build exited with code 1", "step build exited with code 0"])
    critical = _critical_section(c.render())
    assert "x1 step build exited with code 1" in critical
