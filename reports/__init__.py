"""Reports of a conformance run, all read from its typed results (`conformance.results`:
`RunResults`, written as results.json by the pytest plugin, read back with `load_results`):

- `reports.html`: `render_report` / `write_report`, one self-contained HTML page;
- `reports.junit`: `write_junit`, JUnit XML grouped by family and guarantee id;
- `reports.compare`: `compare_results` / `render_comparison` (`python -m reports.compare`);
- `reports.matrix`: `render_matrix` / `write_matrix`, several runs side by side on one page
  (`python -m reports.matrix OUT.html RESULTS.json...`).
"""
