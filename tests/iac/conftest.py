"""Shared fixtures: one real moto server per test session, fixture paths, a tiny embedding function."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "iac"


@pytest.fixture(scope="session")
def moto_endpoint():
    from sim.cloud import start_moto

    handle = start_moto()
    yield handle.endpoint_url
    handle.stop()


@pytest.fixture()
def drift_policy_dir(tmp_path: Path) -> Path:
    dst = tmp_path / "drift-and-policy"
    shutil.copytree(FIXTURES.parents[2] / "sim" / "terraform" / "learn-terraform-drift-and-policy", dst)
    return dst


@pytest.fixture()
def lambda_dir(tmp_path: Path) -> Path:
    dst = tmp_path / "lambda"
    shutil.copytree(FIXTURES / "terraform" / "lambda", dst)
    return dst


class HashingEmbedding:
    """Deterministic bag-of-words hashing embedding (no model download)."""

    def __init__(self, dim: int = 128):
        self.dim = dim

    def __call__(self, input):  # noqa: A002 - chroma's protocol names it `input`
        out = []
        for text in input:
            vec = [0.0] * self.dim
            for tok in str(text).lower().replace(":", " ").replace(".", " ").split():
                vec[int(hashlib.md5(tok.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            out.append([v / norm for v in vec])
        return out

    def name(self) -> str:
        return "nsync-test-hashing"

    def is_legacy(self) -> bool:
        return False

    def embed_query(self, input):  # noqa: A002
        return self(input)

    def get_config(self):
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config):
        return HashingEmbedding(config.get("dim", 128))

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self):
        return ["cosine", "l2", "ip"]


@pytest.fixture()
def embedding():
    return HashingEmbedding()
