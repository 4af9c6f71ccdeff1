//! Error bodies: OpenAI's `{"error": {"message", "type", "param", "code"}}`,
//! built by a server and read back (leniently) by a client.

use serde_json::{json, Value};

use super::excerpt;

/// The JSON body of an error, in OpenAI's shape.
pub fn error_json(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// The message of an error body: OpenAI's `{"error": {"message"}}`, a bare
/// `{"error": "..."}`, vLLM's older `{"object": "error", "message"}`, or the
/// text itself.
pub fn error_body_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match (v.get("error"), v.get("message")) {
            (Some(e), _) if !e.is_null() => error_message(e),
            (_, Some(Value::String(m))) => m.clone(),
            _ => excerpt(body),
        },
        Err(_) => excerpt(body),
    }
}

/// The text of an `error` value: an object with `message`, or a string.
pub(crate) fn error_message(err: &Value) -> String {
    match err {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => err.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_known_servers_yield_their_message() {
        let openai = r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#;
        assert_eq!(error_body_message(openai), "The model `x` does not exist");
        assert_eq!(error_body_message(r#"{"error":"bad"}"#), "bad");
        let vllm = r#"{"object":"error","message":"max_tokens too large","type":"BadRequestError","code":400}"#;
        assert_eq!(error_body_message(vllm), "max_tokens too large");
        assert_eq!(error_body_message("Not Found"), "Not Found");
        let long = "x".repeat(500);
        assert_eq!(error_body_message(&long).chars().count(), 201);
    }

    #[test]
    fn a_built_error_reads_back() {
        let body = error_json("busy", "server_error", None, "provider_busy");
        assert_eq!(body["error"]["param"], Value::Null);
        assert_eq!(error_body_message(&body.to_string()), "busy");
        let body = error_json("bad", "invalid_request_error", Some("n"), "invalid_value");
        assert_eq!(body["error"]["param"], "n");
    }
}
