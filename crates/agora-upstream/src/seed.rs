//! The seed sent to the upstream: the OpenAI wire format carries one seed
//! per request, and agora's `n > 1` requests are one job per choice.

use agora_types::SamplingParams;

/// The seed sent upstream for a job: the job's seed for choice 0, a distinct
/// one for every further choice of an `n > 1` request (each choice is its own
/// job with the same seed; an upstream given equal seeds would repeat itself).
///
/// Sent as a signed 64-bit integer: vLLM refuses seeds outside `i64`, and
/// agora's own gateway reads a negative seed back as the same `u64`.
pub(crate) fn upstream_seed(params: &SamplingParams) -> i64 {
    let seed = match params.choice {
        0 => params.seed,
        c => params
            .seed
            .wrapping_add(u64::from(c).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    seed as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{ChatMessage, JobInput};
    use agora_wire::openai::{request_body as wire_body, Endpoint};
    use serde_json::{json, Value};

    /// The body the engine sends for a job: the wire shape with this seed.
    fn request_body(model: &str, input: &JobInput, params: &SamplingParams) -> (Endpoint, Value) {
        wire_body(model, input, params, upstream_seed(params)).expect("a completion job")
    }

    #[test]
    fn bodies_carry_every_parameter() {
        let mut params = SamplingParams::new(7, 0.5, 0.9, vec!["x".into()], u64::MAX);
        params.presence_penalty = 0.25;
        params.frequency_penalty = -1.0;
        params.logprobs = Some(3);
        let chat = JobInput::Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "hi".into(),
            }],
        };
        let (endpoint, body) = request_body("m", &chat, &params);
        assert_eq!(endpoint, Endpoint::Chat);
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
                   "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": -1,
                   "stop": ["x"], "presence_penalty": 0.25, "frequency_penalty": -1.0,
                   "logprobs": true, "top_logprobs": 3})
        );
        let text = JobInput::Text { prompt: "p".into() };
        let (endpoint, body) =
            request_body("m", &text, &SamplingParams::new(1, 0.0, 1.0, vec![], 5));
        assert_eq!(endpoint, Endpoint::Completions);
        assert_eq!(
            body,
            json!({"model": "m", "prompt": "p", "stream": true, "max_tokens": 1,
                   "temperature": 0.0, "top_p": 1.0, "seed": 5})
        );
        params.logprobs = Some(2);
        let (_, body) = request_body("m", &text, &params);
        assert_eq!(body["logprobs"], json!(2));
    }

    #[test]
    fn every_choice_gets_its_own_seed() {
        let mut params = SamplingParams::new(1, 1.0, 1.0, vec![], 42);
        let first = upstream_seed(&params);
        assert_eq!(first, 42);
        params.choice = 1;
        assert_ne!(upstream_seed(&params), first);
    }
}
