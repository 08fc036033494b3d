"""Project-wide pytest wiring: the stack and services fixtures, and the conformance plugin."""

pytest_plugins = ["fixtures.stack", "fixtures.services", "fixtures.conformance"]
