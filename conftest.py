"""Project-wide pytest wiring: the stack and services fixtures, and the conformance plugin."""

pytest_plugins = ["obsconf.fixtures.stack", "obsconf.fixtures.services", "obsconf.fixtures.conformance"]
