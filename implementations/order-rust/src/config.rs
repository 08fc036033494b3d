//! Settings from the environment: the only configuration the service reads (docs/contract.md).

use std::env;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    pub service: String,
    pub host: String,
    pub port: u16,
    pub mongodb_url: String,
    pub mongodb_db: String,
    pub nats_url: String,
    pub otlp_endpoint: String,
    pub faults: String,
    pub telemetry: bool,
    /// "parent": consume spans continue the trace; "link": new trace + span link.
    pub consumer_relation: String,
    /// Batch span processor delay (OTEL_BSP_SCHEDULE_DELAY, ms; 200 ms like the reference).
    pub span_flush: Duration,
}

fn var(name: &str, default: &str) -> String {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let port = var("OBSCONF_PORT", "8001");
        let port = port
            .parse()
            .map_err(|_| format!("OBSCONF_PORT is not a port: {port:?}"))?;
        let flush = var("OTEL_BSP_SCHEDULE_DELAY", "200");
        let flush: u64 = flush
            .parse()
            .map_err(|_| format!("OTEL_BSP_SCHEDULE_DELAY is not ms: {flush:?}"))?;
        let relation = var("OBSCONF_CONSUMER_RELATION", "parent");
        if relation != "parent" && relation != "link" {
            return Err(format!(
                "OBSCONF_CONSUMER_RELATION must be one of parent, link, not {relation:?}"
            ));
        }
        let telemetry = var("OBSCONF_TELEMETRY", "on").to_lowercase();
        Ok(Settings {
            service: var("OBSCONF_SERVICE", "order-service"),
            host: var("OBSCONF_HOST", "127.0.0.1"),
            port,
            mongodb_url: var("MONGODB_URL", "mongodb://127.0.0.1:27017"),
            mongodb_db: var("MONGODB_DB", "obsconf"),
            nats_url: var("NATS_URL", "nats://127.0.0.1:4222"),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            faults: env::var("OBSCONF_FAULTS").unwrap_or_default(),
            telemetry: !matches!(telemetry.as_str(), "off" | "0" | "false"),
            consumer_relation: relation,
            span_flush: Duration::from_millis(flush),
        })
    }
}
