//! The OpenAI API wire format: the two completion endpoints, the request
//! body a client sends, the responses and stream chunks a server sends (and
//! their reading), usage, logprobs, model lists and error bodies.
//!
//! Request *validation* (limits, defaults, which fields are refused) is the
//! gateway's policy and stays there; this module only holds the shapes.

mod chunk;
mod error;
mod models;
mod request;
mod response;

pub use chunk::{parse_event, Chunk, Ending, RawAlternative, RawLogprob, StreamItem};
pub use error::{error_body_message, error_json};
pub use models::{model_ids, model_list, model_object, MODELS_PATH, MODELS_ROUTE, MODEL_ROUTE};
pub use request::request_body;
pub use response::{logprobs_json, tool_call_json, Billed, ResponseMeta};

use agora_types::FinishReason;

/// Which completion endpoint a request goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`: messages, rendered with the model's chat template.
    Chat,
    /// `POST /v1/completions`: a raw text prompt.
    Completions,
}

impl Endpoint {
    /// The path below an OpenAI base URL (which ends in `/v1`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Completions => "completions",
        }
    }

    /// The route a server registers: `/v1/` and [`Endpoint::path`].
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }
}

/// OpenAI's `finish_reason` string.
pub fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// At most 200 characters of `text`, for error messages.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_paths_below_v1() {
        for e in [Endpoint::Chat, Endpoint::Completions] {
            assert_eq!(e.route(), format!("/v1/{}", e.path()));
        }
        assert_eq!(MODELS_ROUTE, format!("/v1/{MODELS_PATH}"));
    }
}
