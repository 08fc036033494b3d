"""obsconf: a conformance suite for observability guarantees.

One namespace for the project's packages: `obsconf.conformance` (the suite: the specification
any implementation is graded against), `obsconf.stack` (the backends it runs), `obsconf.reports`,
`obsconf.fixtures` (the pytest plugin, registered as `pytest11` entry point `obsconf`),
`obsconf.reference_services` and the bundled `obsconf.targets`.

In a source checkout those packages are the repository's top-level folders, beside this one;
an installed wheel holds them inside this package.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not (_HERE / "conformance").is_dir():  # a source checkout: the packages sit beside us
    __path__.append(str(_HERE.parent))
