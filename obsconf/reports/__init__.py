"""Reports of a conformance run, all read from its typed results (`obsconf.conformance.results`:
`RunResults`, written as results.json by the pytest plugin, read back with `load_results`):

- `obsconf.reports.html`: `render_report` / `write_report`, one self-contained HTML page (its
  style sheet report.css; its evidence drawn by `obsconf.reports.evidence_html`, trace
  waterfalls by `obsconf.reports.waterfall`, escaping and links by `obsconf.reports.markup`);
- `obsconf.reports.junit`: `write_junit`, JUnit XML grouped by family and guarantee id;
- `obsconf.reports.compare`: `compare_results` / `render_comparison` (`python -m
obsconf.reports.compare`);
- `obsconf.reports.matrix`: `render_matrix` / `write_matrix`, several runs side by side on one page
  (`python -m obsconf.reports.matrix OUT.html RESULTS.json...`).
"""
