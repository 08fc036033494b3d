//! W3C Trace Context Level 1: traceparent/tracestate parsed by the recommendation's rules
//! (header fields given as a list of values: HTTP and NATS headers may repeat a name), and
//! formatted for outgoing NATS messages.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;

const MAX_MEMBERS: usize = 32;

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// (trace id, parent id, flags) of the one traceparent field; None if absent, repeated or
/// invalid (the caller then starts a new trace).
pub fn parse_traceparent(values: &[&str]) -> Option<(TraceId, SpanId, TraceFlags)> {
    let [value] = values else { return None };
    let v = trim_ows(value);
    if v.len() < 55 || !v.is_ascii() {
        return None;
    }
    let (version, trace_id, parent_id, flags) = (&v[0..2], &v[3..35], &v[36..52], &v[53..55]);
    let dashes = [2, 35, 52].iter().all(|&i| v.as_bytes()[i] == b'-');
    if !dashes
        || ![version, trace_id, parent_id, flags]
            .iter()
            .all(|f| is_lower_hex(f))
    {
        return None;
    }
    if version == "ff" || (version == "00" && v.len() != 55) {
        return None;
    }
    if v.len() > 55 && v.as_bytes()[55] != b'-' {
        return None; // a future version: the flags end the string or a dash follows them
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let parent_id = SpanId::from_hex(parent_id).ok()?;
    if trace_id == TraceId::INVALID || parent_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, parent_id, TraceFlags::new(flags & 1)))
}

fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b))
}

fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && bytes[bytes.len() - 1] != b' '
}

/// The tracestate fields combined in order (whitespace around members and empty members
/// dropped); the empty state if the list is invalid (the whole header is discarded).
pub fn parse_tracestate(values: &[&str]) -> TraceState {
    let mut members: Vec<(String, String)> = Vec::new();
    for field in values {
        for member in field.split(',').map(trim_ows).filter(|m| !m.is_empty()) {
            let Some((key, value)) = member.split_once('=') else {
                return TraceState::NONE;
            };
            if !valid_key(key) || !valid_value(value) || members.iter().any(|(k, _)| k == key) {
                return TraceState::NONE;
            }
            members.push((key.to_string(), value.to_string()));
        }
    }
    if members.len() > MAX_MEMBERS {
        return TraceState::NONE;
    }
    TraceState::from_key_value(members).unwrap_or(TraceState::NONE)
}

/// A context holding the remote parent the headers name, or an empty context.
pub fn extract(traceparents: &[&str], tracestates: &[&str]) -> Context {
    match parse_traceparent(traceparents) {
        Some((trace_id, span_id, flags)) => {
            let state = parse_tracestate(tracestates);
            let parent = SpanContext::new(trace_id, span_id, flags, true, state);
            Context::new().with_remote_span_context(parent)
        }
        None => Context::new(),
    }
}

/// `traceparent` (and `tracestate` when not empty) of the context's span.
pub fn inject(cx: &Context) -> Vec<(&'static str, String)> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return Vec::new();
    }
    let flags = if sc.is_sampled() { "01" } else { "00" };
    let mut headers = vec![(
        "traceparent",
        format!("00-{}-{}-{flags}", sc.trace_id(), sc.span_id()),
    )];
    let state = sc.trace_state().header();
    if !state.is_empty() {
        headers.push(("tracestate", state));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const P: &str = "00f067aa0ba902b7";

    fn ok(value: &str) -> bool {
        parse_traceparent(&[value]).is_some()
    }

    #[test]
    fn traceparent_cases() {
        assert!(ok(&format!("00-{T}-{P}-01")));
        assert!(ok(&format!("00-{T}-{P}-09")));
        assert!(ok(&format!("cc-{T}-{P}-01")));
        assert!(ok(&format!("cc-{T}-{P}-01-what-the-future-will-be-like")));
        assert!(ok(&format!("\t 00-{T}-{P}-01 \t")));
        assert!(!ok(&format!("ff-{T}-{P}-01")));
        assert!(!ok(&format!("00-{T}-{P}-01.")));
        assert!(!ok(&format!("00-{T}-{P}-01-what")));
        assert!(!ok(&format!("cc-{T}-{P}-01.what")));
        assert!(!ok(&format!(".0-{T}-{P}-01")));
        assert!(!ok(&format!("000-{T}-{P}-01")));
        assert!(!ok(&format!("00-{}-{P}-01", T.to_uppercase())));
        assert!(!ok(&format!("00-{}-{P}-01", "0".repeat(32))));
        assert!(!ok(&format!("00-{T}-{}-01", "0".repeat(16))));
        assert!(!ok(&format!("00-{T}0-{P}-01")));
        assert!(!ok(&format!("00-{T}-{P}-1")));
        assert!(!ok(&format!("00-{T}-{P}-001")));
        let two = [format!("00-{T}-{P}-01"), format!("00-{T}-{P}-01")];
        assert!(parse_traceparent(&[&two[0], &two[1]]).is_none());
    }

    #[test]
    fn tracestate_cases() {
        assert_eq!(
            parse_tracestate(&["foo=1 \t , \t bar=2", "", "baz=3"]).header(),
            "foo=1,bar=2,baz=3"
        );
        assert_eq!(parse_tracestate(&["FOO=1,bar=2"]).header(), "");
        assert_eq!(parse_tracestate(&["foo=1", "foo=2"]).header(), "");
        assert_eq!(parse_tracestate(&["foo=bar=baz"]).header(), "");
        assert_eq!(parse_tracestate(&["foo=,bar=3"]).header(), "");
        let many: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(parse_tracestate(&refs).header(), "");
        assert_eq!(
            parse_tracestate(&refs[..32]).header().split(',').count(),
            32
        );
    }
}
