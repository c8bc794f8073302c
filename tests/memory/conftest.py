"""Shared fixtures: a fresh SQLite file, a tmp Chroma PersistentClient, the real MiniLM embedding
(loaded once per test process), and Redis db 3 with a per-test key prefix."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from memory.models import create_tables
from memory.vectors import PackagedMiniLMEmbedding, chroma_client, embedding_function, minilm_available

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "memory"
REDIS_URL = "redis://127.0.0.1:6379/3"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def embedding():
    """The packaged MiniLM when importable (it is in the project venv), else the lexical fallback."""
    ef = PackagedMiniLMEmbedding() if minilm_available() else embedding_function("hashing")
    ef(["warm up"])  # load once per process
    return ef


@pytest.fixture
def engine(tmp_path):
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'memory.db'}")
    create_tables(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def chroma(tmp_path):
    return chroma_client(path=tmp_path / "chroma")


@pytest.fixture
def redis_url():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis at 127.0.0.1:6379 is required for working-memory tests")
    prefix = f"test-memory-{uuid.uuid4().hex[:8]}:"
    yield REDIS_URL, prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
