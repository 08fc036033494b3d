//! A dependency that failed or did not answer in time: 503 naming it, the server span ERROR,
//! one error log line.

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::Context;
use serde_json::json;

use crate::logs::{self, RequestMeta};
use crate::{faults, telemetry};

#[derive(Debug)]
pub struct DependencyDown {
    pub dependency: &'static str,
    pub message: String,
}

impl DependencyDown {
    pub fn new(dependency: &'static str, message: String) -> DependencyDown {
        DependencyDown {
            dependency,
            message,
        }
    }
}

impl fmt::Display for DependencyDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} unavailable: {}", self.dependency, self.message)
    }
}

impl IntoResponse for DependencyDown {
    fn into_response(self) -> Response {
        if faults::on("no-error-status") {
            // OK is final: the 503 cannot mark the span ERROR afterwards.
            Context::map_current(|cx| cx.span().set_status(Status::Ok));
        } else {
            telemetry::record_error_on_current("DependencyDown", &self.to_string());
        }
        let meta = Context::map_current(|cx| cx.get::<RequestMeta>().cloned()).unwrap_or_default();
        logs::error(
            "order.service",
            format!("{} {} failed: {self}", meta.method, meta.path),
            json!({"dependency": self.dependency}),
        );
        let body = json!({
            "detail": format!("{} unavailable", self.dependency),
            "dependency": self.dependency,
        });
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response.extensions_mut().insert(crate::http::StatusDecided);
        response
    }
}
