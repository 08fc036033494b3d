"""Project-wide pytest wiring: the reference services fixture. The conformance plugin (and the
stack fixtures it brings) is the installed package's `pytest11` entry point, `obsconf`."""

pytest_plugins = ["obsconf.fixtures.services"]
