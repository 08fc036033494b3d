"""Shared telemetry for every reference service: traces, JSON logs, metrics, NATS propagation."""
