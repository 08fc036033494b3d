"""LOAD at any N: send N concurrent user flows, then account for every one of them.

`send` sends the flows (and a few 404 probes) and taps NATS. `collect` reads the backends in
bulk, never one request per flow: traces by service and time window in pages, log lines by
service and window; it follows each flow along its path (HTTP → publish → NATS → consume → …,
with the exporters and the log path beside it), reports progress while it waits and notes
when each flow's signals became queryable. `account` charges a flow that is not whole to the
first stage where something is missing (the reconciliation table counts flows per stage) and
turns the collection times into freshness figures.
"""
