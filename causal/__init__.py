"""Deoxys-style causal recommendation of node mitigations (plain library, no imports of ours).

Modules: data (schema, load/validate/append), synthetic (simulator with potential outcomes),
legacy (the legacy rule), model (CausalForestDML effects), graph + refute (dowhy), policy
(fallback + overriding, Recommendation), registry (versioned models), train (train()),
evaluation (doubly robust off-policy evaluation). Import the submodules directly; this package
init stays empty so `import causal.data` does not pull in econml.
"""
