//! The receiver's protocols, each as its service speaks it: where its envelope arrives, the
//! form of its auth header, how a body decodes into events (strictly: a malformed envelope
//! is a 400, as the real service would refuse it), and the shapes of its answers.

use std::io::Read;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::http::json_response;

/// An ingestion protocol the receiver plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wire {
    /// NDJSON or a JSON array at `/receiver/events`, `Authorization: Bearer`.
    Generic,
    /// Akto's `POST /api/ingestData`, `{"batchData":[…]}`, a raw JWT.
    Akto,
    /// Splunk HEC `POST /services/collector/event`, `Authorization: Splunk`.
    SplunkHec,
    /// Elasticsearch `POST /_bulk`, `Authorization: ApiKey`.
    Elasticsearch,
    /// OTLP/HTTP JSON `POST /v1/logs`, `Authorization: Bearer`.
    Otlp,
    /// Loki `POST /loki/api/v1/push`, `Authorization: Bearer`.
    Loki,
}

impl Wire {
    pub const ALL: [Wire; 6] = [
        Wire::Generic,
        Wire::Akto,
        Wire::SplunkHec,
        Wire::Elasticsearch,
        Wire::Otlp,
        Wire::Loki,
    ];

    /// The daemon's `sink.protocol` name(s) for this wire.
    pub fn from_protocol(name: &str) -> Option<Wire> {
        Some(match name {
            "ndjson" | "json" => Wire::Generic,
            "akto" => Wire::Akto,
            "splunk_hec" => Wire::SplunkHec,
            "elasticsearch" => Wire::Elasticsearch,
            "otlp" => Wire::Otlp,
            "loki" => Wire::Loki,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Wire::Generic => "ndjson",
            Wire::Akto => "akto",
            Wire::SplunkHec => "splunk_hec",
            Wire::Elasticsearch => "elasticsearch",
            Wire::Otlp => "otlp",
            Wire::Loki => "loki",
        }
    }

    /// Where the envelope is posted.
    pub fn path(self) -> &'static str {
        match self {
            Wire::Generic => "/receiver/events",
            Wire::Akto => "/api/ingestData",
            Wire::SplunkHec => "/services/collector/event",
            Wire::Elasticsearch => "/_bulk",
            Wire::Otlp => "/v1/logs",
            Wire::Loki => "/loki/api/v1/push",
        }
    }

    /// Whether the request carries `token` in this protocol's auth header form.
    pub fn authorized(self, headers: &HeaderMap, token: &str) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let expected = match self {
            Wire::Generic | Wire::Otlp | Wire::Loki => format!("Bearer {token}"),
            Wire::Akto => token.to_string(),
            Wire::SplunkHec => format!("Splunk {token}"),
            Wire::Elasticsearch => format!("ApiKey {token}"),
        };
        value == expected
    }

    /// The service's answer to a missing or wrong credential.
    pub fn unauthorized(self) -> Response {
        match self {
            Wire::SplunkHec => json_response(StatusCode::FORBIDDEN, &json!({"text": "Invalid token", "code": 4})),
            Wire::Elasticsearch => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"type": "security_exception", "reason": "unable to authenticate with provided credentials and anonymous access is not allowed for this request"}, "status": 401}),
            ),
            Wire::Otlp => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"code": 16, "message": "Unauthenticated"}),
            ),
            Wire::Akto | Wire::Loki => (StatusCode::UNAUTHORIZED, "unauthorized").into_response(),
            Wire::Generic => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "missing or wrong bearer token"}),
            ),
        }
    }

    /// Whether an empty request is a probe the service answers without writing.
    pub fn empty_answer(self, records: usize, body_len: usize) -> Option<Response> {
        if records > 0 {
            return None;
        }
        match self {
            Wire::SplunkHec if body_len == 0 => Some(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"text": "No data", "code": 5}),
            )),
            Wire::Loki => Some(
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "error at least one valid stream is required for ingestion",
                )
                    .into_response(),
            ),
            Wire::Akto => Some(json_response(StatusCode::OK, &json!({"success": false}))),
            Wire::Otlp => Some(json_response(StatusCode::OK, &json!({}))),
            _ => None,
        }
    }
}

/// One event as it arrived: the document, and what its envelope said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The event inside the envelope (v1 or OCSF).
    pub event: Value,
    /// The envelope's own fields for this event (index and `_id`, labels and timestamp,
    /// HEC fields, OTLP resource and attributes, the Akto record's other fields).
    pub envelope: Value,
}

/// The body as sent, gunzipped when it says so.
pub fn plain(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, String> {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        None | Some("identity") => Ok(body.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| format!("bad gzip body: {e}"))?;
            Ok(out)
        }
        Some(other) => Err(format!("Content-Encoding {other:?} not supported")),
    }
}

/// Decodes a plain body of `wire` into its records.
pub fn decode(wire: Wire, body: &[u8], content_type: Option<&str>) -> Result<Vec<Record>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
    match wire {
        Wire::Generic => generic(text, content_type),
        Wire::Akto => akto(text),
        Wire::SplunkHec => splunk(text),
        Wire::Elasticsearch => bulk(text),
        Wire::Otlp => otlp(text),
        Wire::Loki => loki(text),
    }
}

fn plain_record(event: Value) -> Record {
    Record {
        event,
        envelope: json!({}),
    }
}

fn generic(text: &str, content_type: Option<&str>) -> Result<Vec<Record>, String> {
    // A JSON array is recognised by its content type, or by its shape when none was sent.
    let is_array = match content_type {
        Some(c) => c.starts_with("application/json"),
        None => text.trim_start().starts_with('['),
    };
    if is_array {
        let events: Vec<Value> = serde_json::from_str(text).map_err(|e| format!("bad JSON array: {e}"))?;
        return Ok(events.into_iter().map(plain_record).collect());
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map(plain_record)
                .map_err(|e| format!("bad NDJSON line: {e}"))
        })
        .collect()
}

/// Every field of an `IngestDataBatch` is read as a string.
fn akto(text: &str) -> Result<Vec<Record>, String> {
    let body: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let batch = body
        .get("batchData")
        .and_then(Value::as_array)
        .ok_or("batchData is missing")?;
    let mut out = Vec::new();
    for record in batch {
        let Some(fields) = record.as_object() else {
            return Err("a batchData record is not an object".into());
        };
        if let Some((key, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!("batchData field `{key}` is not a string"));
        }
        for required in [
            "path",
            "method",
            "requestPayload",
            "ip",
            "time",
            "statusCode",
            "akto_account_id",
            "source",
        ] {
            if !fields.contains_key(required) {
                return Err(format!("batchData field `{required}` is missing"));
            }
        }
        let payload = fields["requestPayload"].as_str().unwrap_or_default();
        let event: Value = serde_json::from_str(payload).map_err(|e| format!("requestPayload is not JSON: {e}"))?;
        let mut envelope = fields.clone();
        envelope.remove("requestPayload");
        out.push(Record {
            event,
            envelope: Value::Object(envelope),
        });
    }
    Ok(out)
}

/// Concatenated `{"time",…,"event":{…}}` objects.
fn splunk(text: &str) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, item) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let item = item.map_err(|e| format!("event {i}: not JSON: {e}"))?;
        let Value::Object(mut fields) = item else {
            return Err(format!("event {i} is not an object"));
        };
        let event = fields
            .remove("event")
            .ok_or(format!("event {i}: Event field is required"))?;
        if fields.get("time").is_some_and(|t| !t.is_number()) {
            return Err(format!("event {i}: time is not a number"));
        }
        out.push(Record {
            event,
            envelope: Value::Object(fields),
        });
    }
    Ok(out)
}

/// NDJSON action/document pairs, ending with a newline.
fn bulk(text: &str) -> Result<Vec<Record>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("The bulk request must be terminated by a newline [\\n]".into());
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if !lines.len().is_multiple_of(2) {
        return Err("the bulk body is not action/document pairs".into());
    }
    let mut out = Vec::new();
    for pair in lines.chunks(2) {
        let action: Value = serde_json::from_str(pair[0]).map_err(|e| format!("action line: {e}"))?;
        let meta = action.get("create").ok_or("only create actions are expected")?;
        let mut doc: Map<String, Value> = serde_json::from_str(pair[1]).map_err(|e| format!("document line: {e}"))?;
        let timestamp = doc.remove("@timestamp").unwrap_or(Value::Null);
        out.push(Record {
            event: Value::Object(doc),
            envelope: json!({"_index": meta.get("_index"), "_id": meta.get("_id"), "@timestamp": timestamp}),
        });
    }
    Ok(out)
}

/// An OTLP `AnyValue` in protobuf-JSON back to plain JSON.
fn any_value(value: &Value) -> Result<Value, String> {
    let Some(object) = value.as_object() else {
        return Err("an AnyValue is not an object".into());
    };
    let Some((kind, inner)) = object.iter().next() else {
        return Ok(Value::Null);
    };
    Ok(match kind.as_str() {
        "stringValue" | "boolValue" | "doubleValue" => inner.clone(),
        "intValue" => match inner {
            Value::String(s) => json!(s.parse::<i64>().map_err(|_| format!("intValue `{s}`"))?),
            other => other.clone(),
        },
        "arrayValue" => Value::Array(
            inner
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().map(any_value).collect::<Result<Vec<_>, _>>())
                .transpose()?
                .unwrap_or_default(),
        ),
        "kvlistValue" => {
            let mut map = Map::new();
            for kv in inner.get("values").and_then(Value::as_array).into_iter().flatten() {
                let key = kv
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or("a kvlist entry has no key")?;
                map.insert(key.to_string(), any_value(kv.get("value").unwrap_or(&json!({})))?);
            }
            Value::Object(map)
        }
        other => return Err(format!("unexpected AnyValue kind `{other}`")),
    })
}

fn attributes(list: Option<&Value>) -> Result<Value, String> {
    let mut map = Map::new();
    for kv in list.and_then(Value::as_array).into_iter().flatten() {
        let key = kv.get("key").and_then(Value::as_str).ok_or("an attribute has no key")?;
        map.insert(key.to_string(), any_value(kv.get("value").unwrap_or(&json!({})))?);
    }
    Ok(Value::Object(map))
}

fn decimal(value: Option<&Value>, what: &str) -> Result<(), String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!("{what} must be a decimal string")),
    }
}

fn otlp(text: &str) -> Result<Vec<Record>, String> {
    let body: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Vec::new();
    for resource in body.get("resourceLogs").and_then(Value::as_array).into_iter().flatten() {
        let resource_attrs = attributes(resource.pointer("/resource/attributes"))?;
        for scope in resource
            .get("scopeLogs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for record in scope.get("logRecords").and_then(Value::as_array).into_iter().flatten() {
                decimal(record.get("timeUnixNano"), "timeUnixNano")?;
                decimal(record.get("observedTimeUnixNano"), "observedTimeUnixNano")?;
                if !record.get("severityNumber").is_some_and(Value::is_u64) {
                    return Err("severityNumber must be an integer".into());
                }
                let event = any_value(record.get("body").ok_or("a log record has no body")?)?;
                out.push(Record {
                    event,
                    envelope: json!({
                        "resource": resource_attrs,
                        "attributes": attributes(record.get("attributes"))?,
                        "timeUnixNano": record.get("timeUnixNano"),
                        "severityNumber": record.get("severityNumber"),
                        "eventName": record.get("eventName"),
                    }),
                });
            }
        }
    }
    Ok(out)
}

fn loki(text: &str) -> Result<Vec<Record>, String> {
    let body: Value = serde_json::from_str(text).map_err(|e| format!("loghttp.PushRequest: {e}"))?;
    let mut out = Vec::new();
    for stream in body.get("streams").and_then(Value::as_array).into_iter().flatten() {
        let labels = stream.get("stream").cloned().unwrap_or(Value::Null);
        if !labels
            .as_object()
            .is_some_and(|l| !l.is_empty() && l.values().all(Value::is_string))
        {
            return Err("a stream needs string labels".into());
        }
        for value in stream.get("values").and_then(Value::as_array).into_iter().flatten() {
            let pair = value
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or("a value is not [ts, line]")?;
            decimal(pair.first(), "the timestamp")?;
            let line = pair[1].as_str().ok_or("the line is not a string")?;
            let event: Value = serde_json::from_str(line).map_err(|e| format!("the line is not JSON: {e}"))?;
            out.push(Record {
                event,
                envelope: json!({"labels": labels, "ts": pair[0], "line": line}),
            });
        }
    }
    Ok(out)
}

/// A bare status answer in `wire`'s shape (HEC's codes where a status has one).
pub fn status_response(wire: Wire, status: u16, retry_after: Option<u64>, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = match wire {
        // HEC's codes for the statuses that have one; anything else is a bare status.
        Wire::SplunkHec => match status {
            503 => json_response(code, &json!({"text": "Server is busy", "code": 9})),
            500..=599 => json_response(code, &json!({"text": "Internal server error", "code": 8})),
            401 => json_response(code, &json!({"text": "Token is required", "code": 2})),
            403 => json_response(code, &json!({"text": "Invalid token", "code": 4})),
            _ => json_response(code, &json!({ "text": message })),
        },
        Wire::Loki => (code, message.to_string()).into_response(),
        _ => json_response(code, &json!({"error": message})),
    };
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The event's id: v1 `id`, or OCSF `metadata.uid`.
pub fn event_id(event: &Value) -> Option<&str> {
    event
        .get("id")
        .and_then(Value::as_str)
        .or_else(|| event.pointer("/metadata/uid").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_otlp_any_value_decodes_back_to_the_json_it_encodes() {
        let body = json!({"kvlistValue": {"values": [
            {"key": "n", "value": {"intValue": "7"}},
            {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {}]}}},
            {"key": "ok", "value": {"boolValue": true}}
        ]}});
        assert_eq!(
            any_value(&body).expect("decodes"),
            json!({"n": 7, "list": ["a", null], "ok": true})
        );
    }

    #[test]
    fn malformed_envelopes_are_refused_like_the_services_refuse_them() {
        assert!(bulk("{\"create\":{}}\n{}").is_err(), "no final newline");
        assert!(akto(r#"{"batchData":[{"path":1}]}"#).is_err(), "a non-string field");
        assert!(
            loki(r#"{"streams":[{"stream":{"a":"b"},"values":[[1,"{}"]]}]}"#).is_err(),
            "a numeric timestamp"
        );
        assert!(splunk(r#"{"time":1}"#).is_err(), "no event field");
        assert!(otlp(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1,"body":{}}]}]}]}"#).is_err());
    }
}
