"""Three-layer memory (working, episodic, semantic) and the context compressor, after AOI.

Plain library: imports nothing from agents/, services/, causal/ or iac/. Modules:
tokens (token counting), entities (id extraction), metrics (change points), compressor,
llm (optional LLM pass), working (per-incident scratchpad), vectors (Chroma + embeddings),
index (SQL-mirrored collections), models (SQL tables), episodic, semantic, upkeep.
"""
