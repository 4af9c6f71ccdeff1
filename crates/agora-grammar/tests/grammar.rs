//! The matcher accepts exactly compact JSON of the constrained shape: whole
//! documents pass, every proper prefix stays alive, and whatever a random walk
//! through the allowed bytes produces parses and validates.

use std::sync::Arc;

use agora_grammar::{Grammar, GrammarError, Guide, Json, OutputConstraint, TokenKind, Vocab};
use proptest::prelude::*;
use serde_json::Value;

fn schema(text: &str) -> Grammar {
    Grammar::compile(&OutputConstraint::JsonSchema {
        schema: Json::parse(text).unwrap().to_compact(),
    })
    .unwrap()
}

fn object() -> Grammar {
    Grammar::compile(&OutputConstraint::JsonObject).unwrap()
}

/// Whether `text` is a whole value of `grammar`, with every prefix alive.
fn accepts(grammar: &Grammar, text: &str) -> bool {
    let mut m = grammar.matcher();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if m.can_end() && !m.can_continue() {
            return false;
        }
        if !m.push_byte(b) {
            return false;
        }
        assert!(!m.is_dead(), "alive after byte {i}");
    }
    m.can_end()
}

#[test]
fn json_object_mode_takes_compact_objects_only() {
    let g = object();
    assert!(accepts(
        &g,
        &format!("{{\"n\":-{}.{}e-99}}", "9".repeat(20), "1".repeat(20))
    ));
    assert!(!accepts(&g, &format!("{{\"n\":{}}}", "9".repeat(21))));
    assert!(!accepts(&g, r#"{"n":1e999}"#));
    for ok in [
        r#"{}"#,
        r#"{"a":1}"#,
        r#"{"a":[1,-2.5e+3,"x\u00e9\n",true,null,{}],"b":{"c":false}}"#,
        "{\"ü\":\"日本\"}",
    ] {
        assert!(accepts(&g, ok), "{ok}");
    }
    for bad in [
        r#"[]"#,
        r#"{ "a":1}"#,
        r#"{"a":1,}"#,
        r#"{,}"#,
        r#"{"a"}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":tru}"#,
        r#"{"a":1}}"#,
        "{\"a\":\"\u{1}\"}",
        r#"{"a":"\x"}"#,
        r#"{"a":1"#,
        r#""x""#,
    ] {
        assert!(!accepts(&g, bad), "{bad}");
    }
    // Invalid UTF-8 inside a string is refused byte by byte.
    let mut m = g.matcher();
    assert!(m.push_byte(b'{') && m.push_byte(b'"'));
    assert!(m.after(&[0xff]).is_none() && m.after(&[0xc3, 0x28]).is_none());
    assert!(m.after(&[0xc3, 0xa9]).is_some());
    // Overlong forms, surrogates and code points past U+10FFFF too.
    for bad in [[0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xc0, 0x80, 0x80]] {
        assert!(m.after(&bad).is_none(), "{bad:x?}");
    }
    assert!(m.after(&[0xf4, 0x90]).is_none() && m.after(&[0xf0, 0x8f]).is_none());
    assert!(m.after("\u{10FFFF}\u{800}\u{D7FF}".as_bytes()).is_some());
    // Surrogate escapes (found by the walk below: serde_json refuses a lone one).
    assert!(m.after(br"\ud7ff\u00e9").is_some());
    assert!(m.after(br"\ud800").is_none() && m.after(br"\uDFFF").is_none());
}

#[test]
fn properties_come_in_declared_order_and_required_ones_are_enforced() {
    let g = schema(
        r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2}},"required":["name","tags"],"additionalProperties":false}"#,
    );
    assert!(accepts(&g, r#"{"name":"x","age":3,"tags":["a"]}"#));
    assert!(accepts(&g, r#"{"name":"x","tags":[]}"#));
    for bad in [
        r#"{"age":3,"name":"x","tags":[]}"#,
        r#"{"name":"x","age":3}"#,
        r#"{"name":"x","age":3.5,"tags":[]}"#,
        r#"{"name":"x","tags":["c"]}"#,
        r#"{"name":"x","tags":["a","b","a"]}"#,
        r#"{"name":"x","tags":[],"extra":1}"#,
        r#"{"name":1,"tags":[]}"#,
    ] {
        assert!(!accepts(&g, bad), "{bad}");
    }
}

#[test]
fn anyof_refs_and_type_lists_compose() {
    let g = schema(
        r##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":["integer","null"]},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},"anyOf":[{"$ref":"#/$defs/node"},{"const":"leaf"}]}"##,
    );
    for ok in [
        r#"{"v":null}"#,
        r#"{"v":1,"kids":[{"v":2},{"v":null,"kids":[]}]}"#,
        r#""leaf""#,
    ] {
        assert!(accepts(&g, ok), "{ok}");
    }
    for bad in [r#"{"v":"1"}"#, r#""leaves""#, r#"{"kids":[]}"#] {
        assert!(!accepts(&g, bad), "{bad}");
    }
    // A reference cycle with no byte in between matches nothing, and ends.
    let g = schema(
        r##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}"##,
    );
    assert!(g.matcher().after(b"{").is_none());
}

#[test]
fn unsupported_or_broken_schemas_are_refused_not_weakened() {
    let refuse = |text: &str| {
        Grammar::compile(&OutputConstraint::JsonSchema {
            schema: text.into(),
        })
        .unwrap_err()
    };
    assert!(
        matches!(refuse(r#"{"type":"string","pattern":"^a"}"#), GrammarError::Unsupported(m) if m.contains("pattern"))
    );
    assert!(matches!(
        refuse(r#"{"type":"number","minimum":0}"#),
        GrammarError::Unsupported(_)
    ));
    assert!(matches!(
        refuse(r#"{"$ref":"http://x/y"}"#),
        GrammarError::Unsupported(_)
    ));
    assert!(matches!(
        refuse(r##"{"$ref":"#/$defs/missing"}"##),
        GrammarError::Invalid(_)
    ));
    assert!(matches!(
        refuse(r#"{"type":"object","properties":{},"required":["x"]}"#),
        GrammarError::Invalid(_)
    ));
    assert!(matches!(
        refuse(r#"{"type":"wat"}"#),
        GrammarError::Invalid(_)
    ));
    assert!(matches!(
        refuse(r#"{"enum":[]}"#),
        GrammarError::Unsupported(_)
    ));
    assert!(matches!(refuse(r#"{"type":"#), GrammarError::Invalid(_)));
    assert!(matches!(refuse("false"), GrammarError::Unsupported(_)));
    let mut big = String::from(r#"{"enum":["#);
    for i in 0..5000 {
        big.push_str(&format!("{i},"));
    }
    big.push_str("0]}");
    assert!(matches!(refuse(&big), GrammarError::TooLarge(_)));
}

fn toy_vocab() -> Arc<Vocab> {
    let pieces: Vec<TokenKind> = [
        "{",
        "}",
        "\"",
        "a",
        "\":",
        "1",
        " ",
        "{\"a\":1}",
        "\"a",
        "x\"",
        ",",
        "10",
    ]
    .iter()
    .map(|p| TokenKind::Text(p.as_bytes().to_vec()))
    .chain([TokenKind::End, TokenKind::Control])
    .collect();
    Arc::new(Vocab::new(pieces.len(), |i| pieces[i as usize].clone()))
}

#[test]
fn the_guide_masks_tokens_and_refuses_disallowed_ones() {
    let vocab = toy_vocab();
    let end = 12u32;
    let mut guide = Guide::new(&object(), vocab.clone());
    let allowed = |g: &Guide| {
        let mut l = vec![0.0f32; vocab.len() + 2];
        g.mask(&mut l);
        (0..l.len())
            .filter(|&i| l[i].is_finite())
            .collect::<Vec<_>>()
    };
    assert_eq!(allowed(&guide), [0, 7]);
    assert!(guide.advance(3).is_err());
    guide.advance(0).unwrap();
    // `":` opens a key that starts with a colon: allowed.
    assert_eq!(allowed(&guide), [1, 2, 4, 8]);
    for t in [8, 4, 11] {
        guide.advance(t).unwrap();
    }
    assert!(!guide.is_complete());
    assert_eq!(allowed(&guide), [1, 5, 10, 11]);
    guide.advance(1).unwrap();
    assert!(guide.is_complete());
    assert_eq!(allowed(&guide), [end as usize]);
    guide.advance(end).unwrap();
    assert!(Guide::new(&object(), vocab.clone()).advance(end).is_err());
    assert!(Guide::new(&object(), vocab).advance(13).is_err());
}

/// Validation written independently of the matcher, for the walk below.
fn valid(schema: &Value, v: &Value, root: &Value) -> bool {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return valid(&root["$defs"][name], v, root);
    }
    if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
        return alts.iter().any(|a| valid(a, v, root));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.contains(v);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        Some("number") => v.is_number(),
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        Some("null") => v.is_null(),
        Some("array") => v.as_array().is_some_and(|items| {
            let max = schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            (min..=max).contains(&(items.len() as u64))
                && items.iter().all(|i| valid(&schema["items"], i, root))
        }),
        Some("object") => v.as_object().is_some_and(|o| {
            let props = schema["properties"].as_object().unwrap();
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            required.iter().all(|r| o.contains_key(r.as_str().unwrap()))
                && o.iter()
                    .all(|(k, x)| props.get(k).is_some_and(|s| valid(s, x, root)))
        }),
        _ => true,
    }
}

const WALK_SCHEMA: &str = r##"{"type":"object","properties":{"id":{"type":"integer"},"score":{"type":"number"},"label":{"enum":["yes","no",null,3]},"note":{"type":"string"},"items":{"type":"array","items":{"$ref":"#/$defs/item"},"minItems":1,"maxItems":3},"ok":{"type":"boolean"}},"required":["id","items"],"$defs":{"item":{"anyOf":[{"type":"integer"},{"type":"object","properties":{"k":{"type":"string"}},"required":["k"]}]}}}"##;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compact_serialisations_of_any_object_are_accepted(v in arb_json(3)) {
        let text = serde_json::to_string(&serde_json::json!({ "v": v })).unwrap();
        prop_assert!(accepts(&object(), &text), "{}", text);
    }

    /// Walk random allowed bytes until the output may end: the result always
    /// parses and satisfies the schema.
    #[test]
    fn everything_the_matcher_allows_is_valid(choices in prop::collection::vec(any::<u16>(), 400)) {
        let g = schema(WALK_SCHEMA);
        let root: Value = serde_json::from_str(WALK_SCHEMA).unwrap();
        let mut m = g.matcher();
        let mut out = Vec::new();
        let mut done = false;
        for (i, c) in choices.iter().enumerate() {
            if m.can_end() && (i > 200 || c % 7 == 0 || !m.can_continue()) {
                done = true;
                break;
            }
            // Prefer structural bytes late in the walk so it tends to close.
            let options: Vec<u8> = (0u8..=255).filter(|&b| m.after(&[b]).is_some()).collect();
            prop_assert!(!options.is_empty(), "stuck after {:?}", String::from_utf8_lossy(&out));
            let closers: Vec<u8> = options.iter().copied().filter(|b| b"]}\",".contains(b)).collect();
            let pool = if i > 150 && !closers.is_empty() { &closers } else { &options };
            let b = pool[*c as usize % pool.len()];
            m.push_byte(b);
            out.push(b);
        }
        prop_assume!(done);
        let text = String::from_utf8(out).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        prop_assert!(valid(&root, &v, &root), "{}", text);
    }
}

fn arb_json(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The trie walk (with its shortcut inside strings) allows exactly the
    /// tokens whose bytes, fed one by one, keep the matcher alive.
    #[test]
    fn the_trie_walk_agrees_with_feeding_each_token(
        pieces in prop::collection::vec(prop::collection::vec(prop::sample::select(b"{}[]\":,\\ab 1-.eu0\xc3\xa9\x80".to_vec()), 1..5), 1..60),
        walk in prop::collection::vec(any::<u16>(), 0..24),
    ) {
        let kinds: Vec<TokenKind> = pieces.iter().cloned().map(TokenKind::Text).chain([TokenKind::End]).collect();
        let vocab = Vocab::new(kinds.len(), |i| kinds[i as usize].clone());
        for grammar in [object(), schema(WALK_SCHEMA)] {
        let mut m = grammar.matcher();
        for &step in &walk {
            let allowed = vocab.allowed(&m);
            for (id, kind) in kinds.iter().enumerate() {
                let expected = match kind {
                    TokenKind::Text(bytes) => m.after(bytes).is_some(),
                    _ => m.can_end(),
                };
                prop_assert_eq!(allowed[id], expected, "token {:?} after a walk", kind);
            }
            let options: Vec<usize> = (0..pieces.len()).filter(|&i| allowed[i]).collect();
            if options.is_empty() {
                break;
            }
            m = m.after(&pieces[options[step as usize % options.len()]]).unwrap();
        }
        }
    }
}
