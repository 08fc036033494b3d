//! Request validation with FastAPI/pydantic-shaped 422 answers: every error names its field
//! (`loc`), nothing is written.

use serde_json::{json, Value};

use crate::store::Item;

pub type Errors = Vec<Value>;

fn problem(loc: Vec<Value>, kind: &str, msg: String, input: &Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}

fn loc(path: &[Value]) -> Vec<Value> {
    let mut full = vec![json!("body")];
    full.extend_from_slice(path);
    full
}

/// An integer as pydantic's lax mode reads one (integral floats and numeric strings too).
fn int(value: &Value) -> Result<i64, (&'static str, &'static str)> {
    match value {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
            _ => Err((
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            )),
        },
        Value::String(s) => s.trim().parse().map_err(|_| {
            (
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )
        }),
        _ => Err(("int_type", "Input should be a valid integer")),
    }
}

fn bounded_int(
    value: Option<&Value>,
    path: &[Value],
    (gt, le): (i64, Option<i64>),
    errors: &mut Errors,
) -> Option<i64> {
    let Some(value) = value else {
        errors.push(problem(
            loc(path),
            "missing",
            "Field required".into(),
            &Value::Null,
        ));
        return None;
    };
    match int(value) {
        Err((kind, msg)) => errors.push(problem(loc(path), kind, msg.into(), value)),
        Ok(n) if n <= gt => errors.push(problem(
            loc(path),
            "greater_than",
            format!("Input should be greater than {gt}"),
            value,
        )),
        Ok(n) if le.is_some_and(|le| n > le) => errors.push(problem(
            loc(path),
            "less_than_equal",
            format!(
                "Input should be less than or equal to {}",
                le.unwrap_or_default()
            ),
            value,
        )),
        Ok(n) => return Some(n),
    }
    None
}

fn item(value: &Value, index: usize, errors: &mut Errors) -> Option<Item> {
    let base = [json!("items"), json!(index)];
    let Value::Object(fields) = value else {
        errors.push(problem(
            loc(&base),
            "model_type",
            "Input should be a valid dictionary or object".into(),
            value,
        ));
        return None;
    };
    let sku_path = [base[0].clone(), base[1].clone(), json!("sku")];
    let sku = match fields.get("sku") {
        None => {
            errors.push(problem(
                loc(&sku_path),
                "missing",
                "Field required".into(),
                &Value::Null,
            ));
            None
        }
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            let chars = trimmed.chars().count();
            if chars < 1 {
                errors.push(problem(
                    loc(&sku_path),
                    "string_too_short",
                    "String should have at least 1 character".into(),
                    &json!(s),
                ));
                None
            } else if chars > 64 {
                errors.push(problem(
                    loc(&sku_path),
                    "string_too_long",
                    "String should have at most 64 characters".into(),
                    &json!(s),
                ));
                None
            } else {
                Some(trimmed.to_string())
            }
        }
        Some(other) => {
            errors.push(problem(
                loc(&sku_path),
                "string_type",
                "Input should be a valid string".into(),
                other,
            ));
            None
        }
    };
    let qty_path = [base[0].clone(), base[1].clone(), json!("qty")];
    let qty = bounded_int(fields.get("qty"), &qty_path, (0, Some(10_000)), errors);
    Some(Item {
        sku: sku?,
        qty: qty?,
    })
}

/// `{"user_id": int > 0, "items": [{"sku": str 1–64, "qty": int 1–10000}] (1–100)}`.
pub fn new_order(body: &[u8]) -> Result<(i64, Vec<Item>), Errors> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![
            json!({"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error",
                    "input": {}, "ctx": {"error": e.to_string()}}),
        ]
    })?;
    let Value::Object(fields) = &value else {
        return Err(vec![problem(
            loc(&[]),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from".into(),
            &value,
        )]);
    };
    let mut errors = Errors::new();
    let user_id = bounded_int(
        fields.get("user_id"),
        &[json!("user_id")],
        (0, None),
        &mut errors,
    );
    let items = match fields.get("items") {
        None => {
            errors.push(problem(
                loc(&[json!("items")]),
                "missing",
                "Field required".into(),
                &Value::Null,
            ));
            None
        }
        Some(Value::Array(list)) if list.is_empty() => {
            errors.push(problem(
                loc(&[json!("items")]),
                "too_short",
                "List should have at least 1 item after validation, not 0".into(),
                &json!(list),
            ));
            None
        }
        Some(Value::Array(list)) if list.len() > 100 => {
            errors.push(problem(
                loc(&[json!("items")]),
                "too_long",
                format!(
                    "List should have at most 100 items after validation, not {}",
                    list.len()
                ),
                &json!(list),
            ));
            None
        }
        Some(Value::Array(list)) => {
            let items: Vec<Option<Item>> = list
                .iter()
                .enumerate()
                .map(|(i, v)| item(v, i, &mut errors))
                .collect();
            items.into_iter().collect::<Option<Vec<Item>>>()
        }
        Some(other) => {
            errors.push(problem(
                loc(&[json!("items")]),
                "list_type",
                "Input should be a valid list".into(),
                other,
            ));
            None
        }
    };
    match (user_id, items) {
        (Some(user_id), Some(items)) if errors.is_empty() => Ok((user_id, items)),
        _ => Err(errors),
    }
}

/// The optional `?user_id=` of GET /api/orders: an integer > 0.
pub fn user_id_query(value: Option<&String>) -> Result<Option<i64>, Errors> {
    let Some(raw) = value else { return Ok(None) };
    let mut errors = Errors::new();
    let mut query_loc = |kind: &str, msg: String| {
        errors.push(json!({"type": kind, "loc": ["query", "user_id"], "msg": msg, "input": raw}));
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if n > 0 => return Ok(Some(n)),
        Ok(_) => query_loc("greater_than", "Input should be greater than 0".into()),
        Err(_) => query_loc(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer".into(),
        ),
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> Vec<String> {
        new_order(body.as_bytes())
            .unwrap_err()
            .iter()
            .map(|e| e["loc"].to_string())
            .collect()
    }

    #[test]
    fn names_the_field() {
        assert_eq!(
            fields(r#"{"user_id": 0, "items": [{"sku": "A", "qty": 1}]}"#),
            [r#"["body","user_id"]"#]
        );
        assert_eq!(
            fields(r#"{"user_id": 1, "items": [{"sku": " ", "qty": 1}]}"#),
            [r#"["body","items",0,"sku"]"#]
        );
        assert_eq!(
            fields(r#"{"user_id": 1, "items": [{"sku": "A", "qty": 10001}]}"#),
            [r#"["body","items",0,"qty"]"#]
        );
        assert_eq!(
            fields(r#"{"user_id": 1, "items": []}"#),
            [r#"["body","items"]"#]
        );
        assert_eq!(fields("not json"), [r#"["body"]"#]);
    }

    #[test]
    fn accepts_a_valid_order() {
        let (user, items) =
            new_order(br#"{"user_id": "7", "items": [{"sku": " A ", "qty": 2.0}]}"#).unwrap();
        assert_eq!(
            (user, items),
            (
                7,
                vec![Item {
                    sku: "A".into(),
                    qty: 2
                }]
            )
        );
    }
}
