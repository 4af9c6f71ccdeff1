//! Model lists: `GET /v1/models` as a server builds it and a client reads it.

use serde_json::{json, Value};

use super::excerpt;

/// The model list's path below an OpenAI base URL.
pub const MODELS_PATH: &str = "models";
/// The route serving the model list.
pub const MODELS_ROUTE: &str = "/v1/models";
/// The route serving one model (`GET /v1/models/{id}`; ids may hold `/`).
pub const MODEL_ROUTE: &str = "/v1/models/{*id}";

/// One model object: `{"id", "object": "model", "created", "owned_by"}`;
/// a server may add fields of its own.
pub fn model_object(id: &str, created: u64, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by})
}

/// The list answer: `{"object": "list", "data": [...]}`.
pub fn model_list(data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data})
}

/// The `id`s of a list answer; `Err` says why the body is not one.
pub fn model_ids(body: &str) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {}", excerpt(body)))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no `data` array: {}", excerpt(body)))?;
    data.iter()
        .map(|m| {
            m.get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("a model has no string `id`: {m}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_list_reads_back_and_bad_ones_say_why() {
        let list = model_list(vec![
            model_object("a", 0, "agora"),
            model_object("b/c", 1, "x"),
        ]);
        assert_eq!(model_ids(&list.to_string()).unwrap(), vec!["a", "b/c"]);
        assert!(model_ids("nope").unwrap_err().contains("not JSON"));
        assert!(model_ids("{}").unwrap_err().contains("no `data`"));
        assert!(model_ids(r#"{"data":[{"id":1}]}"#)
            .unwrap_err()
            .contains("no string `id`"));
    }
}
