"""One service of the foreign implementation: `python service.py user|order|inventory`.

Written apart from obsconf's reference services, on purpose: the standard library's threaded
HTTP server (`web.py`, no web framework), blocking database drivers, NATS through a thread
bridge (`bus.py`), and the hand-made telemetry of `obs.py`. It reads only what the
implementer's contract (docs/contract.md) says the harness gives: OBSCONF_HOST, OBSCONF_PORT,
OBSCONF_SERVICE, POSTGRES_URL, MONGODB_URL, NATS_URL, OTEL_EXPORTER_OTLP_ENDPOINT, plus
OTEL_BSP_SCHEDULE_DELAY from its target's env.
"""

from __future__ import annotations

import os
import signal
import sys

import obs


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OBSCONF_ROLE", "")
    obs.capture_std_streams()
    obs.start_exporter()
    import apis  # after the streams are captured: whatever it prints is counted
    import web

    api = apis.ROLES[role]()
    api.start()
    host, port = os.environ.get("OBSCONF_HOST", "127.0.0.1"), int(os.environ["OBSCONF_PORT"])
    server = web.Server((host, port), web.make_handler(api))

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    obs.emit("info", f"{obs.SERVICE} ({role}) listening on {host}:{port}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        api.stop()
        obs.stop_exporter()
        obs.emit("info", f"{obs.SERVICE} stopped")


if __name__ == "__main__":
    main()
