"""The paraphrase generator: held-out wording shares no word with what the platform matches on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sim.faults import FAULT_KINDS
from sim.paraphrase import FRAMES, slot_words, templates, vocabulary

ROOT = Path(__file__).resolve().parents[2]
# English function words: no matcher can key on them, so the wordings may share them
STOPWORDS = {"the", "and", "for", "from", "after", "with", "per", "its", "not", "all", "any", "was", "are", "has",
             "had", "but", "near", "into", "over", "each", "every", "without", "once", "than", "too"}


def _code_strings(path: Path) -> list[str]:
    """String literals of a module except docstrings: the text its matching can use."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def tuning_vocabulary() -> set[str]:
    """Words the platform was tuned with: its code's literals (agents/, memory/), the catalog's lines, the tune wording's
    slot synonyms (the frames' own words are in both wordings and are checked against the code separately)."""
    words: set[str] = set()
    for package in ("agents", "memory"):
        for path in (ROOT / package).rglob("*.py"):
            for text in _code_strings(path):
                words |= set(re.findall(r"[a-z]{3,}", text.lower()))
    for kind in FAULT_KINDS.values():
        for line in kind.signatures:
            words |= set(re.findall(r"[a-z]{3,}", line.lower()))
    return words | slot_words("tune")


def test_held_out_words_are_not_in_the_tuning_vocabulary():
    shared = (vocabulary("held_out") & tuning_vocabulary()) - STOPWORDS
    assert not shared, f"held-out wording uses words the tuned code or the tune wording knows: {sorted(shared)}"


def test_no_tuning_term_hides_inside_a_held_out_word():
    # the phrase table and log filters match substrings ("oom" would match "room"): check that too
    terms = {t for t in tuning_vocabulary() - STOPWORDS if len(t) >= 4}
    hidden = sorted({(t, w) for w in vocabulary("held_out") - STOPWORDS for t in terms if t in w and t != w})
    assert not hidden, f"tuning terms inside held-out words: {hidden[:20]}"


def test_held_out_lines_escape_the_diagnosers_own_matchers():
    from agents.diagnoser import ALERT_HINTS, SIGNATURES
    from agents.diagnosis.evidence import ERROR_WORDS

    phrases = {p for table in (SIGNATURES, ALERT_HINTS) for group in table.values() for p in group}
    for kind in FAULT_KINDS:
        for line in templates(kind, wording="held_out", seed=7, count=40):
            body = re.sub(r"^[\\w{}]+(\\[\\{n\\}\\])?:\\s", "", line).lower()
            assert not ERROR_WORDS.search(body), line
            assert not [p for p in phrases if p.strip() and p.strip() in body], line


def test_every_fault_kind_has_frames_and_lines_differ_by_wording():
    assert set(FRAMES) == set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        tune = templates(kind, wording="tune", seed=1)
        held = templates(kind, wording="held_out", seed=1)
        assert len(tune) == len(held) == 8
        assert not set(tune) & set(held)
        assert templates(kind, wording="held_out", seed=1) == held  # deterministic
        for line in held:  # the catalog's placeholders stay for the telemetry to fill
            line.format(svc="cart", n=1, n4=2, k=3, hex="ab", release="v1", node="node-1")


def test_unknown_wording_is_refused():
    with pytest.raises(ValueError, match="unknown wording"):
        templates("disk_failure", wording="tuned", seed=0)  # type: ignore[arg-type]
