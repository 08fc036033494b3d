//! JetStream: the shared stream, traced publishing (PRODUCER spans, W3C context, request id
//! and Nats-Msg-Id in the headers), the durable explicit-ack `user.created` consumer and the
//! outbox relay.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use async_nats::{HeaderMap, HeaderValue};
use futures::StreamExt;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId,
};
use opentelemetry::{Context, KeyValue};
use serde_json::{json, Value};

use crate::logs::{self, RequestMeta};
use crate::telemetry::{self, SpanSpec};
use crate::{faults, metrics, w3c};

pub const STREAM: &str = "OBSCONF_EVENTS";
pub const SUBJECTS: [&str; 2] = ["user.created", "order.created"];
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_ID_HEADER: &str = "X-Request-ID";
const LOGGER: &str = "order.events";

/// An event stored with the data it announces, with the W3C headers of the span that wrote it.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub event_id: String,
    pub subject: String,
    pub payload: Value,
    pub trace_carrier: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    js: jetstream::Context,
    consumer_relation: Arc<str>,
    first_consumed: Arc<Mutex<Option<Context>>>,
}

fn header_values<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Vec<&'a str> {
    headers
        .map(|h| h.get_all(name).map(HeaderValue::as_str).collect())
        .unwrap_or_default()
}

impl Bus {
    pub async fn connect(url: &str, service: &str, consumer_relation: &str) -> Result<Bus, String> {
        let client = async_nats::ConnectOptions::new()
            .name(service)
            .connection_timeout(Duration::from_secs(2))
            .max_reconnects(None)
            .reconnect_delay_callback(|_| Duration::from_millis(500))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => logs::info(LOGGER, "nats connected", json!({})),
                    async_nats::Event::Disconnected => {
                        logs::warning(LOGGER, "nats disconnected", json!({}))
                    }
                    other => logs::warning(LOGGER, format!("nats error: {other}"), json!({})),
                }
            })
            .connect(url)
            .await
            .map_err(|e| format!("NATS {url}: {e}"))?;
        let js = jetstream::new(client.clone());
        let bus = Bus {
            client,
            js,
            consumer_relation: consumer_relation.into(),
            first_consumed: Arc::new(Mutex::new(None)),
        };
        bus.ensure_stream().await?;
        Ok(bus)
    }

    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn ensure_stream(&self) -> Result<(), String> {
        if self.js.get_stream(STREAM).await.is_ok() {
            return Ok(());
        }
        let config = jetstream::stream::Config {
            name: STREAM.to_string(),
            subjects: SUBJECTS.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        match self.js.create_stream(config).await {
            Ok(_) => Ok(()),
            // another service created it meanwhile
            Err(_) if self.js.get_stream(STREAM).await.is_ok() => Ok(()),
            Err(e) => Err(format!("stream {STREAM}: {e}")),
        }
    }

    /// Publish `event` under a PRODUCER span, child of `parent` (W3C headers) if given, else
    /// of the current context; the error says why JetStream did not acknowledge it.
    pub async fn publish(&self, event: &PendingEvent) -> Result<(), String> {
        if !self.connected() {
            return Err("not connected to NATS".into());
        }
        let subject = event.subject.as_str();
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.event_id.as_str());
        let request_id = logs::current_request_id();
        if !request_id.is_empty() && !faults::on("no-request-id-on-publish") {
            headers.insert(REQUEST_ID_HEADER, request_id.as_str());
        }
        let current = Context::current();
        let parent = if event.trace_carrier.is_empty() {
            current.clone()
        } else {
            let get = |name: &str| -> Vec<&str> {
                event
                    .trace_carrier
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect()
            };
            // keep the current context's values (request meta), take the stored span
            let stored = w3c::extract(&get("traceparent"), &get("tracestate"));
            current.with_remote_span_context(stored.span().span_context().clone())
        };
        let kind = if faults::on("wrong-publish-kind") {
            SpanKind::Internal
        } else {
            SpanKind::Producer
        };
        let mut attributes = messaging_attributes(subject, "publish", "send");
        attributes.push(KeyValue::new(
            "messaging.message.id",
            event.event_id.clone(),
        ));
        let scope = if faults::on("publish-span-not-exported") {
            None
        } else {
            Some(telemetry::start(
                format!("publish {subject}"),
                SpanSpec::new(kind, attributes),
                &parent,
            ))
        };
        let injected = match &scope {
            Some(scope) => w3c::inject(&scope.cx),
            None => ghost_headers(&parent),
        };
        if !faults::on("no-inject") {
            for (name, value) in injected {
                if !(name == "tracestate" && faults::on("drop-tracestate")) {
                    headers.insert(name, value.as_str());
                }
            }
        }
        let body = serde_json::to_vec(&event.payload).expect("json");
        let sent = async {
            let ack = self
                .js
                .publish_with_headers(subject.to_string(), headers, body.into())
                .await
                .map_err(|e| format!("{e}"))?;
            ack.await.map_err(|e| format!("{e}"))
        };
        let result = match tokio::time::timeout(PUBLISH_TIMEOUT, sent).await {
            Ok(result) => result,
            Err(_) => Err(format!("no acknowledgement in {PUBLISH_TIMEOUT:?}")),
        };
        if let Some(scope) = &scope {
            match &result {
                Ok(ack) => scope.set(vec![KeyValue::new(
                    "messaging.nats.stream_sequence",
                    ack.sequence as i64,
                )]),
                Err(error) => scope.error(format!("publish failed: {error}")),
            }
            scope.end();
        }
        let ack = result.map_err(|e| format!("{subject}: {e}"))?;
        metrics::count_event(&metrics::METRICS.events_published, subject);
        logs::info(
            LOGGER,
            format!("published {subject}"),
            json!({"event_id": event.event_id, "duplicate": ack.duplicate}),
        );
        Ok(())
    }

    /// The durable explicit-ack pull consumer of `subject`, created now (before /health is
    /// ready); its loop runs `handler` on every message in the background.
    pub async fn consume<H, F>(
        &self,
        subject: &'static str,
        durable: &str,
        handler: H,
    ) -> Result<(), String>
    where
        H: Fn(Value) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), String>> + Send,
    {
        let config = pull::Config {
            durable_name: Some(durable.to_string()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(15),
            max_deliver: 50,
            deliver_policy: DeliverPolicy::All,
            filter_subject: subject.to_string(),
            ..Default::default()
        };
        let stream = self
            .js
            .get_stream(STREAM)
            .await
            .map_err(|e| format!("stream {STREAM}: {e}"))?;
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(durable, config)
            .await
            .map_err(|e| format!("consumer {durable}: {e}"))?;
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                let batch = consumer
                    .fetch()
                    .max_messages(10)
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await;
                let mut batch = match batch {
                    Ok(batch) => batch,
                    Err(error) => {
                        logs::warning(
                            LOGGER,
                            format!("fetch on {subject} failed: {error}"),
                            json!({}),
                        );
                        tokio::time::sleep(Duration::from_millis(500)).await; // back-off while NATS reconnects
                        continue;
                    }
                };
                while let Some(message) = batch.next().await {
                    match message {
                        Ok(message) => bus.handle(subject, message, &handler).await,
                        Err(error) => {
                            logs::warning(
                                LOGGER,
                                format!("fetch on {subject} failed: {error}"),
                                json!({}),
                            );
                            break;
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// The consume span's parent context (or, in link mode, a new trace and a link).
    fn consume_parent(&self, headers: Option<&HeaderMap>) -> (Context, Vec<Link>) {
        let mut cx = if faults::on("consumer-new-root") {
            Context::new()
        } else {
            w3c::extract(
                &header_values(headers, "traceparent"),
                &header_values(headers, "tracestate"),
            )
        };
        if faults::on("shared-consumer-context") {
            let mut first = self.first_consumed.lock().expect("lock");
            cx = first.get_or_insert(cx).clone();
        }
        if &*self.consumer_relation == "link" {
            let producer = cx.span().span_context().clone();
            let links = if producer.is_valid() {
                vec![Link::with_context(producer)]
            } else {
                vec![]
            };
            return (Context::new(), links);
        }
        (cx, Vec::new())
    }

    async fn handle<H, F>(&self, subject: &str, message: jetstream::Message, handler: &H)
    where
        H: Fn(Value) -> F,
        F: Future<Output = Result<(), String>>,
    {
        let headers = message.headers.as_ref();
        let request_id = header_values(headers, REQUEST_ID_HEADER)
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let meta = RequestMeta {
            request_id,
            method: String::new(),
            path: String::new(),
        };
        if faults::on("consumer-log-before-context") {
            let cx = Context::new().with_value(meta.clone());
            async { logs::info(LOGGER, format!("received {subject}"), json!({})) }
                .with_context(cx)
                .await;
        }
        let (parent, links) = self.consume_parent(headers);
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let mut attributes = messaging_attributes(subject, "process", "process");
        attributes.push(KeyValue::new("messaging.nats.delivery_count", delivered));
        let kind = if faults::on("wrong-consume-kind") {
            SpanKind::Internal
        } else {
            SpanKind::Consumer
        };
        let mut spec = SpanSpec::new(kind, attributes);
        spec.links = links;
        if faults::on("skewed-span-clock") {
            spec.start = Some(SystemTime::now() - Duration::from_secs(2));
        }
        let scope = telemetry::start(format!("process {subject}"), spec, &parent.with_value(meta));
        async {
            let event: Result<Value, String> = serde_json::from_slice::<Value>(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    if v.get("event_id").is_some() {
                        Ok(v)
                    } else {
                        Err("no event_id".into())
                    }
                });
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    scope.error("malformed event".into());
                    logs::error(
                        LOGGER,
                        format!("malformed event on {subject} dropped: {error}"),
                        json!({}),
                    );
                    let _ = message.ack_with(AckKind::Term).await;
                    return;
                }
            };
            let event_id = id_string(&event["event_id"]);
            scope.set(vec![KeyValue::new(
                "messaging.message.id",
                event_id.clone(),
            )]);
            if let Err(error) = handler(event).await {
                telemetry::record_error_on_current("HandlerFailed", &error);
                logs::error(
                    LOGGER,
                    format!(
                        "handling {subject} failed (delivery {delivered}), will retry: {error}"
                    ),
                    json!({"event_id": event_id}),
                );
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                return;
            }
            let _ = message.ack().await;
            metrics::count_event(&metrics::METRICS.events_consumed, subject);
        }
        .with_context(scope.cx.clone())
        .await;
        scope.end();
    }
}

/// `publish-span-not-exported`: headers naming a span id that never reaches the store (trace
/// id, flags and state of the parent, or a new sampled trace).
fn ghost_headers(parent: &Context) -> Vec<(&'static str, String)> {
    let span = parent.span();
    let sc = span.span_context();
    let (trace_id, flags) = if sc.is_valid() {
        (sc.trace_id(), sc.trace_flags())
    } else {
        (TraceId::from_bytes(rand::random()), TraceFlags::SAMPLED)
    };
    let span_id = SpanId::from_bytes(rand::random());
    let ghost = SpanContext::new(trace_id, span_id, flags, false, sc.trace_state().clone());
    w3c::inject(&Context::new().with_remote_span_context(ghost))
}

fn messaging_attributes(
    subject: &str,
    operation: &'static str,
    operation_type: &'static str,
) -> Vec<KeyValue> {
    if faults::on("no-messaging-attrs") {
        return vec![KeyValue::new("messaging.operation", operation)];
    }
    vec![
        KeyValue::new("messaging.system", "nats"),
        KeyValue::new("messaging.destination.name", subject.to_string()),
        KeyValue::new("messaging.operation", operation),
        KeyValue::new("messaging.operation.type", operation_type),
    ]
}

/// An id field as text (a JSON string as it is, anything else as JSON).
pub fn id_string(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), String::from)
}

/// Publish one stored event and mark it sent; false (still pending) if NATS failed.
pub async fn publish_pending(bus: &Bus, store: &crate::store::Store, event: &PendingEvent) -> bool {
    if let Err(error) = bus.publish(event).await {
        logs::warning(
            "order.outbox",
            format!(
                "publish of {} deferred to the outbox relay: {error}",
                event.subject
            ),
            json!({"event_id": event.event_id}),
        );
        return false;
    }
    if let Err(error) = store.mark_sent(&event.event_id).await {
        // published; the relay re-sends, consumers dedupe
        logs::warning(
            "order.outbox",
            format!("could not mark {} sent: {error}", event.event_id),
            json!({}),
        );
    }
    true
}

/// Background loop: every 0.5 s publish what is still pending (polling is not traced).
pub fn start_relay(bus: Bus, store: crate::store::Store) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await; // relay cadence
            if !bus.connected() {
                continue;
            }
            match store.pending_events().await {
                Ok(pending) => {
                    for event in pending {
                        if !publish_pending(&bus, &store, &event).await {
                            break;
                        }
                    }
                }
                Err(error) => logs::warning(
                    "order.outbox",
                    format!("outbox relay round failed: {error}"),
                    json!({}),
                ),
            }
        }
    });
}
