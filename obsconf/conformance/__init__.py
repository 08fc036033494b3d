"""The conformance suite: guarantee catalog, backend clients, trace analysis, scenarios."""
