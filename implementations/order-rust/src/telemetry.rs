//! Tracer provider (OTLP/HTTP protobuf, batch export every OTEL_BSP_SCHEDULE_DELAY ms) and the
//! span helpers every part uses. With telemetry off no span is made.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;

use crate::config::Settings;
use crate::faults;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Install the provider when telemetry is on; keep the result to flush it on exit. Must run
/// outside the async runtime (the blocking HTTP client of the exporter has its own).
pub fn init(settings: &Settings) -> Result<Option<SdkTracerProvider>, String> {
    if !settings.telemetry {
        return Ok(None);
    }
    let endpoint = format!("{}/v1/traces", settings.otlp_endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(settings.span_flush)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = if faults::on("no-service-name") {
        Resource::builder_empty().build()
    } else {
        Resource::builder_empty()
            .with_service_name(settings.service.clone())
            .build()
    };
    let sampler = if faults::on("ignore-sampled-flag") {
        Sampler::AlwaysOn
    } else {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .with_sampler(sampler)
        .build();
    let _ = TRACER.set(provider.tracer("order-rust"));
    Ok(Some(provider))
}

pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// A span being recorded: its context (parent's values + the span), ended by `end`.
pub struct Scope {
    pub cx: Context,
    owned: bool,
}

impl Scope {
    pub fn set(&self, attributes: Vec<KeyValue>) {
        if self.owned {
            self.cx.span().set_attributes(attributes);
        }
    }

    pub fn error(&self, message: String) {
        if self.owned {
            self.cx.span().set_status(Status::error(message));
        }
    }

    pub fn end(&self) {
        if self.owned {
            self.cx.span().end();
        }
    }
}

/// What a new span needs besides its name.
pub struct SpanSpec {
    pub kind: SpanKind,
    pub attributes: Vec<KeyValue>,
    pub links: Vec<Link>,
    pub start: Option<SystemTime>,
}

impl SpanSpec {
    pub fn new(kind: SpanKind, attributes: Vec<KeyValue>) -> SpanSpec {
        SpanSpec {
            kind,
            attributes,
            links: Vec::new(),
            start: None,
        }
    }
}

/// Start a span under `parent` (its span, or none: a new trace); values of `parent` (the
/// request meta) are kept in the returned context.
pub fn start(name: String, spec: SpanSpec, parent: &Context) -> Scope {
    let Some(tracer) = TRACER.get() else {
        return Scope {
            cx: parent.clone(),
            owned: false,
        };
    };
    let mut builder = tracer
        .span_builder(name)
        .with_kind(spec.kind)
        .with_attributes(spec.attributes);
    if !spec.links.is_empty() {
        builder = builder.with_links(spec.links);
    }
    if let Some(start) = spec.start {
        builder = builder.with_start_time(start);
    }
    let span = builder.start_with_context(tracer, parent);
    Scope {
        cx: parent.with_span(span),
        owned: true,
    }
}

/// Mark the current span ERROR with an `exception` event (what the 503 path and a failed
/// consume do); `no-error-status` keeps it OK, a final status.
pub fn record_error_on_current(kind: &str, message: &str) {
    Context::map_current(|cx| {
        let span = cx.span();
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", kind.to_string()),
                KeyValue::new("exception.message", message.to_string()),
            ],
        );
        span.set_status(Status::error(message.to_string()));
    });
}
