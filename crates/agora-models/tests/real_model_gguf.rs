//! The default model's header read by `agora_models::gguf`: the fields its
//! registry entry carries, and its tokenizer hash against the value pinned
//! from an independent (Python) reading of the file.

use agora_models::{default_model_entry, ensure_default_model, entry_for, model_id, read_meta};

#[test]
fn the_default_models_header_gives_its_entry_and_pinned_tokenizer_hash() {
    let path = ensure_default_model(&mut std::io::stderr()).unwrap();
    let meta = read_meta(&path).unwrap();
    assert_eq!(meta.architecture, "llama");
    assert_eq!(meta.quantization, "Q4_1");
    assert_eq!(
        meta.tokenizer_hash.to_hex(),
        agora_models::DEFAULT_MODEL_TOKENIZER_HASH
    );
    let entry = default_model_entry();
    assert_eq!(entry.tokenizer_hash, meta.tokenizer_hash);
    assert_eq!(
        (entry.architecture.as_str(), entry.quantization.as_str()),
        (meta.architecture.as_str(), meta.quantization.as_str())
    );
    assert_eq!(entry.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        entry_for(&path, model_id(&path).unwrap(), None).unwrap(),
        entry
    );

    // A copy under another id (as if it were another file) is described
    // from its header: same tokenizer, architecture and quantization.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("My-Model.gguf");
    std::fs::copy(&path, &copy).unwrap();
    let other = entry_for(&copy, agora_types::Hash32([7; 32]), None).unwrap();
    assert_eq!(other.name, "my-model");
    assert_eq!(other.tokenizer_hash, meta.tokenizer_hash);
    assert_eq!(other.quantization, "Q4_1");
    assert_eq!(
        other.license,
        meta.license.unwrap_or_else(|| "unknown".into())
    );
}
