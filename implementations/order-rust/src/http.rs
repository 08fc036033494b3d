//! The HTTP API (Axum): orders, /health, /metrics, the error hook, and the middleware that
//! makes the SERVER span, handles X-Request-ID, logs one line per request and counts it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::KeyValue;
use serde_json::json;

use crate::errors::DependencyDown;
use crate::events::{self, Bus};
use crate::logs::{self, RequestMeta};
use crate::store::{NewOrder, Store};
use crate::telemetry::{self, SpanSpec};
use crate::{faults, metrics, validate, w3c};

const UNTRACED: [&str; 2] = ["/health", "/metrics"];
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<str>,
    pub store: Store,
    pub bus: Bus,
}

/// Set on a response whose span status was already decided (the 503 path).
#[derive(Clone, Copy)]
pub struct StatusDecided;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/orders", get(list_orders).post(create_order))
        .route("/api/orders/{id}", get(get_order))
        .route("/api/fail", get(fail))
        .route("/health", get(health))
        .route("/metrics", get(metrics_endpoint))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

fn unprocessable(errors: validate::Errors) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": errors})),
    )
        .into_response()
}

async fn create_order(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<Response, DependencyDown> {
    let (user_id, items) = match validate::new_order(&body) {
        Ok(order) => order,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    let new = NewOrder {
        user_id,
        items,
        kind: "regular",
        order_id: None,
        source_event_id: None,
    };
    let (order, event) = app
        .store
        .insert_order(new)
        .await?
        .expect("a fresh uuid is never a duplicate");
    metrics::count_business(&metrics::METRICS.orders_created);
    events::publish_pending(&app.bus, &app.store, &event).await;
    Ok((StatusCode::CREATED, Json(order)).into_response())
}

async fn get_order(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, DependencyDown> {
    Ok(match app.store.get_order(&id).await? {
        Some(order) => Json(order).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"detail": format!("no order with id {id}")})),
        )
            .into_response(),
    })
}

async fn list_orders(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, DependencyDown> {
    let user_id = match validate::user_id_query(query.get("user_id")) {
        Ok(user_id) => user_id,
        Err(errors) => return Ok(unprocessable(errors)),
    };
    Ok(Json(app.store.list_orders(user_id).await?).into_response())
}

/// Conformance hook (target capability `error_hook`): always answers 5xx.
async fn fail() -> Result<Response, DependencyDown> {
    Err(DependencyDown::new(
        "error-hook",
        "RuntimeError: failure requested by /api/fail".into(),
    ))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn health(State(app): State<AppState>) -> Response {
    let mongodb = async {
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, app.store.ping()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(error)) => format!("down: {error}").chars().take(300).collect(),
            Err(_) => "down: TimeoutError".to_string(),
        }
    };
    let nats = async { if app.bus.connected() { "ok" } else { "down" }.to_string() };
    let (mongodb, nats) = tokio::join!(mongodb, nats);
    let healthy = mongodb == "ok" && nats == "ok";
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "service": &*app.service,
        "dependencies": {"mongodb": mongodb, "nats": nats},
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_endpoint() -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        metrics::exposition(),
    )
        .into_response()
}

fn values<'a>(request: &'a Request, name: &str) -> Vec<&'a str> {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn valid_request_id(id: &str) -> bool {
    (1..=200).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn looks_like_traceparent(value: &str) -> bool {
    let v = value.trim().as_bytes();
    v.len() == 55
        && v.iter().enumerate().all(|(i, &b)| match i {
            2 | 35 | 52 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Around every request but /health and /metrics: SERVER span continuing the caller's W3C
/// context, X-Request-ID accepted or made and echoed, one log line, counter and histogram.
async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if UNTRACED.contains(&path.as_str()) {
        return next.run(request).await;
    }
    let traceparents = values(&request, "traceparent");
    if faults::on("strict-traceparent")
        && traceparents
            .first()
            .is_some_and(|v| !looks_like_traceparent(v))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "malformed traceparent"})),
        )
            .into_response();
    }
    let parent = if faults::on("ignore-incoming-context") {
        opentelemetry::Context::new()
    } else {
        w3c::extract(&traceparents, &values(&request, "tracestate"))
    };
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let echo = !faults::on("no-request-id");
    let request_id = values(&request, "x-request-id")
        .first()
        .filter(|id| valid_request_id(id))
        .map_or_else(
            || uuid::Uuid::new_v4().simple().to_string(),
            |id| id.to_string(),
        );
    let meta = RequestMeta {
        request_id: if echo {
            request_id.clone()
        } else {
            String::new()
        },
        method: method.clone(),
        path: path.clone(),
    };
    let old = faults::on("old-semconv");
    let mut attributes = if old {
        vec![
            KeyValue::new("http.method", method.clone()),
            KeyValue::new("http.target", path.clone()),
            KeyValue::new("http.scheme", "http"),
        ]
    } else {
        vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.path", path.clone()),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("network.protocol.version", "1.1"),
        ]
    };
    if let Some(route) = &route {
        attributes.push(KeyValue::new("http.route", route.clone()));
    }
    if let Some(agent) = values(&request, "user-agent").first() {
        attributes.push(KeyValue::new(
            if old {
                "http.user_agent"
            } else {
                "user_agent.original"
            },
            agent.to_string(),
        ));
    }
    let name = route
        .as_ref()
        .map_or_else(|| method.clone(), |r| format!("{method} {r}"));
    let scope = telemetry::start(
        name,
        SpanSpec::new(SpanKind::Server, attributes),
        &parent.with_value(meta),
    );
    let started = Instant::now();
    let mut response = next.run(request).with_context(scope.cx.clone()).await;
    let status = response.status().as_u16();
    let decided = response.extensions().get::<StatusDecided>().is_some();
    let code_key = if old {
        "http.status_code"
    } else {
        "http.response.status_code"
    };
    scope.set(vec![KeyValue::new(code_key, i64::from(status))]);
    // A 4xx leaves the status unset, as the HTTP semantic conventions require.
    if status >= 500 && !decided {
        scope.error(String::new());
    } else if (400..500).contains(&status) && faults::on("error-status-on-4xx") {
        scope.error(format!("HTTP {status}"));
    }
    let headers = response.headers_mut();
    if echo {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", value);
        }
    }
    if telemetry::enabled() {
        let span = scope.cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flags = if sc.is_sampled() { "01" } else { "00" };
            let value = format!("00-{}-{}-{flags}", sc.trace_id(), sc.span_id());
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert("traceresponse", value);
                headers.insert(
                    "access-control-expose-headers",
                    HeaderValue::from_static("traceresponse"),
                );
            }
        }
    }
    let elapsed = started.elapsed();
    let label = route.clone().unwrap_or_else(|| "unmatched".into());
    if !(status >= 400 && faults::on("no-count-errors")) {
        let endpoint = if faults::on("raw-path-label") {
            path.as_str()
        } else {
            label.as_str()
        };
        metrics::record_request(
            &app.service,
            &method,
            endpoint,
            status,
            elapsed.as_secs_f64(),
        );
    }
    let line = json!({
        "http_method": method,
        "http_path": path,
        "http_route": label,
        "http_status": status,
        "duration_ms": (elapsed.as_secs_f64() * 100_000.0).round() / 100.0,
    });
    async { logs::info("order.http", format!("{method} {path} -> {status}"), line) }
        .with_context(scope.cx.clone())
        .await;
    scope.end();
    response
}
