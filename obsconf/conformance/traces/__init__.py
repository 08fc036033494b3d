"""Traces as data: the span model, OTLP JSON parsing, and trace-graph analysis."""
