"""Project-wide pytest wiring: the fixtures plugin."""

pytest_plugins = ["fixtures.stack"]
