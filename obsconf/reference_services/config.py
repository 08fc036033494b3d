"""Service settings from the environment (the only configuration the services read)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    database_url: str
    mongodb_url: str
    mongodb_db: str
    nats_url: str
    otlp_endpoint: str
    faults: str
    telemetry: bool
    consumer_relation: str  # "parent": consume spans continue the trace; "link": new trace + link
    logs: str = "file"  # "file": JSON lines on stdout; "otlp": OTLP log records
    otlp_logs_endpoint: str = ""  # full URL OTLP log records are POSTed to

    @classmethod
    def from_env(cls, default_port: int) -> Settings:
        env = os.environ
        return cls(
            host=env.get("OBSCONF_HOST", "127.0.0.1"),
            port=int(env.get("OBSCONF_PORT", default_port)),
            database_url=env.get(
                "DATABASE_URL", "postgresql+psycopg://obsconf@127.0.0.1:5432/obsconf"
            ),
            mongodb_url=env.get("MONGODB_URL", "mongodb://127.0.0.1:27017"),
            mongodb_db=env.get("MONGODB_DB", "obsconf"),
            nats_url=env.get("NATS_URL", "nats://127.0.0.1:4222"),
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            faults=env.get("OBSCONF_FAULTS", ""),
            telemetry=env.get("OBSCONF_TELEMETRY", "on").lower() not in ("off", "0", "false"),
            consumer_relation=env.get("OBSCONF_CONSUMER_RELATION", "parent"),
            logs=env.get("OBSCONF_LOGS") or "file",
            otlp_logs_endpoint=env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", ""),
        )
