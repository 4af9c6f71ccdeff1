//! What crosses the wire between agora's HTTP peers, defined once.
//!
//! - [`openai`]: the OpenAI API shapes: the completion endpoints, request
//!   bodies, responses and stream chunks (built and read), usage, logprobs,
//!   model lists and error bodies. The gateway serves them; the upstream
//!   engine speaks them to an OpenAI-compatible server.
//! - [`sse`]: a bounded `text/event-stream` codec.
//! - [`headers`]: agora's `x-agora-*` response headers.
//! - [`provider`]: the provider's HTTP endpoints, served by agora-provider
//!   and called by the gateway and the validator.
//!
//! The crate does no I/O: it turns values into bytes and JSON and back.

pub mod headers;
pub mod openai;
pub mod provider;
pub mod sse;
