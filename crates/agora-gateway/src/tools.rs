//! Structured output and function calling. `response_format` and forced tool
//! calls become an [`OutputConstraint`] (sampling is masked to it, and the
//! auditors replay the same mask); the tool list becomes system-prompt text
//! (part of the job's input, so it is replayed too); and generated text that
//! is a call of a listed function goes back to the client as `tool_calls`.

use agora_grammar::Grammar;
pub(crate) use agora_grammar::Json;
use agora_types::{ChatMessage, OutputConstraint};
use serde_json::{json, Map, Value};

use crate::ApiError;

/// Most functions one request may list.
pub const MAX_TOOLS: usize = 128;

/// The functions a request offers and whether it must call one.
#[derive(Clone, Debug, PartialEq)]
pub struct Tools {
    /// The functions, in the order given.
    pub functions: Vec<Function>,
    /// `tool_choice`.
    pub choice: ToolChoice,
}

/// One function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// JSON Schema of its arguments, compact, keys in the client's order.
    pub parameters: String,
}

/// OpenAI's `tool_choice` (`none` means no [`Tools`] at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// Call a function or answer in text, as the model decides.
    Auto,
    /// Call some function.
    Required,
    /// Call this function.
    Named(String),
}

/// One call the model made, as `tool_calls` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// `call_…`, unique per response.
    pub id: String,
    /// The function.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// The body with object keys in their order, parsed only when it matters.
pub(crate) fn ordered(body: &[u8]) -> Result<Json, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::malformed("The body is not UTF-8"))?;
    Json::parse(text)
        .map_err(|e| ApiError::malformed(format!("We could not parse the JSON body: {e}")))
}

/// `response_format` as a constraint (`None` for text).
pub(crate) fn response_format<'a>(
    obj: &Map<String, Value>,
    ordered: impl FnOnce() -> Result<&'a Json, ApiError>,
) -> Result<Option<OutputConstraint>, ApiError> {
    const PARAM: &str = "response_format";
    let format = match obj.get(PARAM) {
        None | Some(Value::Null) => return Ok(None),
        Some(f @ Value::Object(_)) => f,
        Some(_) => {
            return Err(ApiError::invalid(
                PARAM,
                "`response_format` must be an object",
            ))
        }
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(OutputConstraint::JsonObject)),
        Some("json_schema") => {
            let param = "response_format.json_schema.schema";
            let body = ordered()?;
            let schema = body
                .get(PARAM)
                .and_then(|f| f.get("json_schema"))
                .and_then(|s| s.get("schema"))
                .ok_or_else(|| ApiError::invalid(param, "`json_schema.schema` is required"))?;
            let constraint = OutputConstraint::JsonSchema {
                schema: schema.to_compact(),
            };
            Grammar::compile(&constraint).map_err(|e| ApiError::invalid(param, e.to_string()))?;
            Ok(Some(constraint))
        }
        Some(other) => Err(ApiError::invalid(
            PARAM,
            format!(
                "`response_format.type` `{other}` is not one of text, json_object, json_schema"
            ),
        )),
        None => Err(ApiError::invalid(
            PARAM,
            "`response_format.type` is required",
        )),
    }
}

/// `tools` and `tool_choice` (`None` when there are no tools or the choice is `none`).
pub(crate) fn tools<'a>(
    obj: &Map<String, Value>,
    ordered: impl FnOnce() -> Result<&'a Json, ApiError>,
) -> Result<Option<Tools>, ApiError> {
    let list = match obj.get("tools") {
        None | Some(Value::Null) => return tool_choice_alone(obj),
        Some(Value::Array(list)) if list.is_empty() => return tool_choice_alone(obj),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::invalid("tools", "`tools` must be an array")),
    };
    if list.len() > MAX_TOOLS {
        return Err(ApiError::invalid(
            "tools",
            format!("At most {MAX_TOOLS} tools are allowed"),
        ));
    }
    let body = ordered()?;
    let mut functions: Vec<Function> = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let at = |f: &str| format!("tools[{i}].{f}");
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(ApiError::invalid(
                &at("type"),
                "Only tools of type `function` are supported",
            ));
        }
        let f = tool
            .get("function")
            .ok_or_else(|| ApiError::invalid(&at("function"), "`function` is required"))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ApiError::invalid(
                &at("function.name"),
                "A function name must be 1-64 letters, digits, `_` or `-`",
            ));
        }
        if functions.iter().any(|g| g.name == name) {
            return Err(ApiError::invalid(
                &at("function.name"),
                format!("Function `{name}` is listed twice"),
            ));
        }
        let description = match f.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    &at("function.description"),
                    "`description` must be a string",
                ))
            }
        };
        let parameters = match body
            .get("tools")
            .and_then(|t| match t {
                Json::Array(items) => items.get(i),
                _ => None,
            })
            .and_then(|t| t.get("function"))
            .and_then(|f| f.get("parameters"))
        {
            None | Some(Json::Null) => r#"{"type":"object","properties":{}}"#.to_string(),
            Some(p @ Json::Object(_)) => p.to_compact(),
            Some(_) => {
                return Err(ApiError::invalid(
                    &at("function.parameters"),
                    "`parameters` must be a JSON Schema object",
                ))
            }
        };
        let check = OutputConstraint::JsonSchema {
            schema: parameters.clone(),
        };
        Grammar::compile(&check)
            .map_err(|e| ApiError::invalid(&at("function.parameters"), e.to_string()))?;
        functions.push(Function {
            name: name.to_string(),
            description,
            parameters,
        });
    }
    let choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(c)) => match c.as_str() {
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            "none" => return Ok(None),
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    "`tool_choice` must be none, auto, required or a named function",
                ))
            }
        },
        Some(c) => {
            let name = c
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match name {
                Some(n) if functions.iter().any(|f| f.name == n) => ToolChoice::Named(n.to_string()),
                Some(n) => return Err(ApiError::invalid("tool_choice", format!("`tool_choice` names `{n}`, which is not among the tools"))),
                None => return Err(ApiError::invalid("tool_choice", "`tool_choice` must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")),
            }
        }
    };
    Ok(Some(Tools { functions, choice }))
}

/// A `tool_choice` other than `none`/`auto` without tools is a contradiction.
fn tool_choice_alone(obj: &Map<String, Value>) -> Result<Option<Tools>, ApiError> {
    match obj.get("tool_choice") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) if c == "none" || c == "auto" => Ok(None),
        Some(_) => Err(ApiError::invalid(
            "tool_choice",
            "`tool_choice` needs `tools`",
        )),
    }
}

impl Tools {
    /// What the model is told about the functions, appended to the system prompt.
    pub fn instructions(&self) -> String {
        let mut text = String::from(
            "You can call functions. To call one, answer with only a JSON object of the form \
             {\"name\": <function name>, \"arguments\": <object of arguments>} and nothing else.\n\
             Available functions:\n",
        );
        for f in &self.functions {
            let mut line = format!("{{\"name\":{}", json!(f.name));
            if let Some(d) = &f.description {
                line.push_str(&format!(",\"description\":{}", json!(d)));
            }
            line.push_str(&format!(",\"parameters\":{}}}\n", f.parameters));
            text.push_str(&line);
        }
        text.push_str(&match &self.choice {
            ToolChoice::Auto => {
                "Call a function only when it helps; otherwise answer normally.".to_string()
            }
            ToolChoice::Required => "You must call one of these functions now.".to_string(),
            ToolChoice::Named(n) => format!("You must call the function `{n}` now."),
        });
        text
    }

    /// The constraint that forces a call (`None` when the model may answer in text).
    pub fn constraint(&self) -> Option<OutputConstraint> {
        let call = |f: &Function| {
            format!(
                r#"{{"type":"object","properties":{{"name":{{"const":{}}},"arguments":{}}},"required":["name","arguments"]}}"#,
                json!(f.name),
                f.parameters
            )
        };
        let schema = match &self.choice {
            ToolChoice::Auto => return None,
            ToolChoice::Named(n) => call(self.functions.iter().find(|f| &f.name == n)?),
            ToolChoice::Required if self.functions.len() == 1 => call(&self.functions[0]),
            ToolChoice::Required => {
                let alts: Vec<String> = self.functions.iter().map(call).collect();
                format!(r#"{{"anyOf":[{}]}}"#, alts.join(","))
            }
        };
        Some(OutputConstraint::JsonSchema { schema })
    }

    /// The call `text` makes, if it is one of a listed function (bare JSON,
    /// or wrapped in a code fence or `<tool_call>` tags, as models write it).
    pub fn parse_call(&self, text: &str, id: String) -> Option<ToolCall> {
        let mut t = text.trim();
        for (open, close) in [
            ("<tool_call>", "</tool_call>"),
            ("```json", "```"),
            ("```", "```"),
        ] {
            if let Some(inner) = t
                .strip_prefix(open)
                .and_then(|r| r.trim_end().strip_suffix(close))
            {
                t = inner.trim();
                break;
            }
        }
        let call = Json::parse(t).ok()?;
        let Some(Json::String(name)) = call.get("name") else {
            return None;
        };
        let listed = self.functions.iter().any(|f| &f.name == name);
        let allowed = match &self.choice {
            ToolChoice::Named(n) => n == name,
            _ => true,
        };
        if !listed || !allowed {
            return None;
        }
        let arguments = match call.get("arguments").or_else(|| call.get("parameters")) {
            None => "{}".to_string(),
            Some(a @ Json::Object(_)) => a.to_compact(),
            Some(Json::String(s)) if matches!(Json::parse(s), Ok(Json::Object(_))) => s.clone(),
            Some(_) => return None,
        };
        Some(ToolCall {
            id,
            name: name.clone(),
            arguments,
        })
    }
}

/// Put the tool instructions into the conversation: appended to the first
/// system message, or as a new one in front.
pub(crate) fn instruct(messages: &mut Vec<ChatMessage>, tools: &Tools) {
    let text = tools.instructions();
    match messages.first_mut().filter(|m| m.role == "system") {
        Some(system) => {
            system.content.push_str("\n\n");
            system.content.push_str(&text);
        }
        None => messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: text,
            },
        ),
    }
}

/// An assistant message's `tool_calls`, written as the model is told to write calls.
pub(crate) fn calls_as_text(i: usize, calls: &Value) -> Result<String, ApiError> {
    let param = format!("messages[{i}].tool_calls");
    let Value::Array(calls) = calls else {
        return Err(ApiError::invalid(&param, "`tool_calls` must be an array"));
    };
    let mut lines = Vec::with_capacity(calls.len());
    for call in calls {
        let f = call.get("function");
        let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
        let args = f.and_then(|f| f.get("arguments")).and_then(Value::as_str);
        let (Some(name), Some(args)) = (name, args) else {
            return Err(ApiError::invalid(
                &param,
                "Each tool call needs `function.name` and `function.arguments` strings",
            ));
        };
        let args = Json::parse(args)
            .map(|a| a.to_compact())
            .unwrap_or_else(|_| json!(args).to_string());
        lines.push(format!("{{\"name\":{},\"arguments\":{args}}}", json!(name)));
    }
    Ok(lines.join("\n"))
}

/// A `tool` message (a function's result), as the user turn the model reads.
pub(crate) fn tool_result(i: usize, m: &Value, content: String) -> Result<ChatMessage, ApiError> {
    let id = match m.get("tool_call_id") {
        Some(Value::String(id)) => id.as_str(),
        _ => {
            return Err(ApiError::invalid(
                &format!("messages[{i}].tool_call_id"),
                "A `tool` message needs a string `tool_call_id`",
            ))
        }
    };
    Ok(ChatMessage {
        role: "user".into(),
        content: format!("Result of function call {id}:\n{content}"),
    })
}
