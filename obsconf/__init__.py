"""obsconf: a conformance suite for observability guarantees.

Each subpackage is the folder of the same name, and the repository's top-level folders
(`conformance/`, `stack/`, ...) are links to them: `obsconf.conformance.target` is
`obsconf/conformance/target.py` for Python, type checkers, IDEs, tracebacks and grep alike.

- `obsconf.conformance`: the suite, the specification any implementation is graded against
- `obsconf.stack`: the backends it runs; `obsconf.reports`: what a run writes
- `obsconf.fixtures`: the pytest plugin (entry point `obsconf`, inert unless asked for)
- `obsconf.reference_services`: the reference system (`pip install 'obsconf[reference]'`)
- `obsconf.targets`: the bundled target files
"""
