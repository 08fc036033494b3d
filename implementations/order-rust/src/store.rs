//! Orders in MongoDB. Each order document embeds its `order.created` outbox entry, so order and
//! event are written by one single-document insert (the reference's layout, same collection).

use std::future::IntoFuture;
use std::time::Duration;

use mongodb::bson::{self, doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::errors::DependencyDown;
use crate::events::PendingEvent;
use crate::telemetry::{self, SpanSpec};
use crate::w3c;

/// Upper bound of one database call: a dependency that does not answer gives 503, not a hang.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(4);
const WELCOME_NAMESPACE: uuid::Uuid = uuid::uuid!("6f1c1f7e-3c55-4c4e-9a59-0b5b1c1d2e01");

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Item {
    pub sku: String,
    pub qty: i64,
}

#[derive(Clone)]
pub struct Store {
    db: Database,
    orders: Collection<Document>,
    address: (String, u16),
}

/// Deterministic order id per user.created event: a redelivery finds the order it made.
pub fn welcome_order_id(event_id: &str) -> String {
    uuid::Uuid::new_v5(&WELCOME_NAMESPACE, event_id.as_bytes()).to_string()
}

fn now_iso() -> (String, bson::DateTime) {
    let now = chrono::Utc::now();
    (
        now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(),
        bson::DateTime::from_millis(now.timestamp_millis()),
    )
}

/// The order as the API answers it.
pub fn order_json(doc: &Document) -> Value {
    let get = |key: &str| {
        doc.get(key)
            .cloned()
            .map(Bson::into_relaxed_extjson)
            .unwrap_or(Value::Null)
    };
    json!({
        "id": get("_id"),
        "user_id": get("user_id"),
        "items": get("items"),
        "kind": get("kind"),
        "status": get("status"),
        "source_event_id": get("source_event_id"),
        "created_at": get("created_at"),
    })
}

/// A new order: id, kind and the event it came from (welcome orders).
pub struct NewOrder {
    pub user_id: i64,
    pub items: Vec<Item>,
    pub kind: &'static str,
    pub order_id: Option<String>,
    pub source_event_id: Option<String>,
}

impl Store {
    /// A client failing fast (2 s server selection and connect); no I/O until first use.
    pub async fn connect(url: &str, database: &str) -> Result<Store, String> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| format!("MONGODB_URL: {e}"))?;
        options.server_selection_timeout = Some(Duration::from_secs(2));
        options.connect_timeout = Some(Duration::from_secs(2));
        options.app_name = Some("order-rust".into());
        let address = options
            .hosts
            .first()
            .map(|h| match h {
                mongodb::options::ServerAddress::Tcp { host, port } => {
                    (host.clone(), port.unwrap_or(27017))
                }
                _ => ("localhost".to_string(), 27017),
            })
            .unwrap_or(("localhost".to_string(), 27017));
        let client = Client::with_options(options).map_err(|e| format!("mongodb client: {e}"))?;
        let db = client.database(database);
        Ok(Store {
            orders: db.collection("orders"),
            db,
            address,
        })
    }

    /// `ping`, untraced (health probes make no spans).
    pub async fn ping(&self) -> Result<(), String> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A CLIENT span `<op> orders` around one call, bounded by CALL_TIMEOUT; failures become
    /// DependencyDown("mongodb").
    async fn call<T, F>(&self, op: &str, traced: bool, fut: F) -> Result<T, CallError>
    where
        F: IntoFuture<Output = Result<T, mongodb::error::Error>>,
    {
        let scope = traced.then(|| {
            let attributes = vec![
                KeyValue::new("db.system", "mongodb"),
                KeyValue::new("db.system.name", "mongodb"),
                KeyValue::new("db.namespace", self.db.name().to_string()),
                KeyValue::new("db.collection.name", "orders"),
                KeyValue::new("db.operation.name", op.to_string()),
                KeyValue::new("server.address", self.address.0.clone()),
                KeyValue::new("server.port", i64::from(self.address.1)),
            ];
            telemetry::start(
                format!("{op} orders"),
                SpanSpec::new(SpanKind::Client, attributes),
                &Context::current(),
            )
        });
        let result = match tokio::time::timeout(CALL_TIMEOUT, fut.into_future()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if is_duplicate(&error) => Err(CallError::Duplicate),
            Ok(Err(error)) => Err(CallError::Down(format!("{error}"))),
            Err(_) => Err(CallError::Down(format!("no answer in {CALL_TIMEOUT:?}"))),
        };
        if let Some(scope) = scope {
            if let Err(CallError::Down(message)) = &result {
                scope.error(message.clone());
            }
            scope.end();
        }
        result
    }

    /// Insert an order with its pending `order.created` event; None if `order_id` exists.
    pub async fn insert_order(
        &self,
        new: NewOrder,
    ) -> Result<Option<(Value, PendingEvent)>, DependencyDown> {
        let order_id = new
            .order_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (created_at, now) = now_iso();
        let items = bson::to_bson(&new.items).expect("items as bson");
        let mut document = doc! {
            "_id": &order_id,
            "user_id": new.user_id,
            "items": items,
            "kind": new.kind,
            "status": "created",
            "source_event_id": new.source_event_id.clone().map_or(Bson::Null, Bson::String),
            "created_at": &created_at,
        };
        let data = order_json(&document);
        let event_id = uuid::Uuid::new_v4().to_string();
        let payload = json!({
            "event_id": event_id,
            "type": "order.created",
            "occurred_at": created_at,
            "data": data,
        });
        let carrier: Vec<(String, String)> = w3c::inject(&Context::current())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let carrier_doc: Document = carrier
            .iter()
            .map(|(k, v)| (k.clone(), Bson::String(v.clone())))
            .collect();
        document.insert(
            "outbox",
            doc! {
                "event_id": &event_id,
                "subject": "order.created",
                "payload": bson::to_bson(&payload).expect("payload as bson"),
                "trace_carrier": carrier_doc,
                "published": false,
                "created_at": now,
            },
        );
        match self
            .call("insert", true, self.orders.insert_one(document))
            .await
        {
            Ok(_) => {}
            Err(CallError::Duplicate) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
        let event = PendingEvent {
            event_id,
            subject: "order.created".into(),
            payload,
            trace_carrier: carrier,
        };
        Ok(Some((data, event)))
    }

    pub async fn get_order(&self, order_id: &str) -> Result<Option<Value>, DependencyDown> {
        let found = self
            .call("find", true, self.orders.find_one(doc! {"_id": order_id}))
            .await;
        let found = found.map_err(DependencyDown::from)?;
        Ok(found.as_ref().map(order_json))
    }

    pub async fn list_orders(&self, user_id: Option<i64>) -> Result<Vec<Value>, DependencyDown> {
        let filter = user_id.map_or_else(Document::new, |id| doc! {"user_id": id});
        let find = async {
            let mut cursor = self
                .orders
                .find(filter)
                .sort(doc! {"created_at": 1})
                .limit(1000)
                .await?;
            let mut docs = Vec::new();
            while cursor.advance().await? {
                docs.push(cursor.deserialize_current()?);
            }
            Ok(docs)
        };
        let docs = self.call("find", true, find).await;
        let docs = docs.map_err(DependencyDown::from)?;
        Ok(docs.iter().map(order_json).collect())
    }

    /// Orders whose event is unpublished and older than one second (untraced polling).
    pub async fn pending_events(&self) -> Result<Vec<PendingEvent>, DependencyDown> {
        let cutoff = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 1000);
        let filter = doc! {"outbox.published": false, "outbox.created_at": {"$lt": cutoff}};
        let find = async {
            let mut cursor = self
                .orders
                .find(filter)
                .projection(doc! {"outbox": 1})
                .limit(100)
                .await?;
            let mut docs = Vec::new();
            while cursor.advance().await? {
                docs.push(cursor.deserialize_current()?);
            }
            Ok(docs)
        };
        let docs = self.call("find", false, find).await;
        let docs = docs.map_err(DependencyDown::from)?;
        Ok(docs.iter().filter_map(pending_of).collect())
    }

    pub async fn mark_sent(&self, event_id: &str) -> Result<(), DependencyDown> {
        let update = self.orders.update_one(
            doc! {"outbox.event_id": event_id},
            doc! {"$set": {"outbox.published": true}},
        );
        let traced = Context::map_current(|cx| cx.has_active_span());
        self.call("update", traced, update)
            .await
            .map(|_| ())
            .map_err(DependencyDown::from)
    }
}

fn pending_of(document: &Document) -> Option<PendingEvent> {
    let outbox = document.get_document("outbox").ok()?;
    let carrier = outbox
        .get_document("trace_carrier")
        .map(|c| {
            c.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Some(PendingEvent {
        event_id: outbox.get_str("event_id").ok()?.to_string(),
        subject: outbox.get_str("subject").ok()?.to_string(),
        payload: outbox.get("payload")?.clone().into_relaxed_extjson(),
        trace_carrier: carrier,
    })
}

/// How one database call failed.
enum CallError {
    Duplicate,
    Down(String),
}

impl From<CallError> for DependencyDown {
    fn from(error: CallError) -> DependencyDown {
        match error {
            CallError::Duplicate => DependencyDown::new("mongodb", "duplicate key".into()),
            CallError::Down(message) => DependencyDown::new("mongodb", message),
        }
    }
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    matches!(&*error.kind, ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == 11000)
}
