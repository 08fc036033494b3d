//! obsconf Order API in Rust (Axum): orders in MongoDB, one welcome order per `user.created`,
//! `order.created` published through JetStream; traces, JSON logs and metrics as the
//! implementer's contract (docs/contract.md) requires.

mod config;
mod errors;
mod events;
mod faults;
mod http;
mod logs;
mod metrics;
mod store;
mod telemetry;
mod validate;
mod w3c;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Settings;
use crate::events::{id_string, publish_pending};
use crate::http::AppState;
use crate::store::{welcome_order_id, Item, NewOrder};

const DURABLE: &str = "order-service-user-created";
const LOGGER: &str = "order.service";

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("order-service: {error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = faults::configure(&settings.faults) {
        eprintln!("{}: {error}", settings.service);
        return ExitCode::from(2);
    }
    logs::init(&settings.service);
    logs::install_panic_hook();
    // Outside the runtime: the exporter's blocking HTTP client brings its own.
    let provider = match telemetry::init(&settings) {
        Ok(provider) => provider,
        Err(error) => {
            logs::error(LOGGER, format!("telemetry: {error}"), json!({}));
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(serve(settings));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(provider) = provider {
        let _ = provider.shutdown(); // flush pending spans
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            logs::error(LOGGER, format!("stopped: {error}"), json!({}));
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    logs::info(
        LOGGER,
        format!("starting on {}:{}", settings.host, settings.port),
        json!({
            "faults": faults::active(),
            "telemetry": settings.telemetry,
            "consumer_relation": settings.consumer_relation,
        }),
    );
    let store = store::Store::connect(&settings.mongodb_url, &settings.mongodb_db).await?;
    let bus = events::Bus::connect(
        &settings.nats_url,
        &settings.service,
        &settings.consumer_relation,
    )
    .await?;
    let app = AppState {
        service: settings.service.as_str().into(),
        store,
        bus,
    };
    let handler_app = Arc::new(app.clone());
    app.bus
        .consume("user.created", DURABLE, move |event| {
            let app = handler_app.clone();
            async move { on_user_created(&app, event).await }
        })
        .await?;
    events::start_relay(app.bus.clone(), app.store.clone());
    let listener = tokio::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .await
        .map_err(|e| format!("listen on {}:{}: {e}", settings.host, settings.port))?;
    axum::serve(listener, http::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))?;
    logs::info(LOGGER, "stopped", json!({}));
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn user_id_of(event: &Value) -> Result<i64, String> {
    let id = &event["data"]["id"];
    id.as_i64()
        .or_else(|| id.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| format!("user.created without an integer data.id: {id}"))
}

/// One welcome order per user.created event; a redelivery finds it and creates nothing.
async fn on_user_created(app: &AppState, event: Value) -> Result<(), String> {
    let user_id = user_id_of(&event)?;
    let event_id = id_string(&event["event_id"]);
    let new = NewOrder {
        user_id,
        items: vec![Item {
            sku: "WELCOME-KIT".into(),
            qty: 1,
        }],
        kind: "welcome",
        order_id: Some(welcome_order_id(&event_id)),
        source_event_id: Some(event_id.clone()),
    };
    let Some((order, order_event)) = app
        .store
        .insert_order(new)
        .await
        .map_err(|e| e.to_string())?
    else {
        logs::info(
            "order.consumer",
            "duplicate user.created ignored: welcome order exists",
            json!({"event_id": event_id, "user_id": user_id}),
        );
        return Ok(());
    };
    metrics::count_business(&metrics::METRICS.orders_created);
    metrics::count_business(&metrics::METRICS.welcome_orders_created);
    logs::info(
        "order.consumer",
        "welcome order created",
        json!({"order_id": order["id"], "user_id": user_id}),
    );
    publish_pending(&app.bus, &app.store, &order_event).await;
    Ok(())
}
