"""Reports of a conformance run, all read from the `--results` JSON the pytest plugin writes
(see `fixtures/conformance.py`):

- `reports.html`: `render_report` / `write_report`, one self-contained HTML page;
- `reports.junit`: `write_junit`, JUnit XML grouped by family and guarantee id;
- `reports.compare`: `compare_results` / `render_comparison` (`python -m reports.compare`).
"""
