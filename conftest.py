"""The repository's own tests: the stack fixtures (`obsconf.fixtures.stack`) and the reference
services fixture. The installed plugin brings none of these; the suite's fixtures are all
`obsconf_*` and load only with --target (`obsconf.fixtures.plugin`)."""

pytest_plugins = ["obsconf.fixtures.stack", "obsconf.fixtures.services"]
