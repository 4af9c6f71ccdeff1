//! A model's vocabulary as a byte trie, so the tokens a matcher allows are
//! found by walking shared prefixes once instead of every token separately.

use crate::Matcher;

/// What a token is, for constrained decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A token that produces these bytes of text.
    Text(Vec<u8>),
    /// A token that ends generation.
    End,
    /// A control token with no text: never allowed under a constraint.
    Control,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Children by next byte, sorted by byte.
    children: Vec<(u8, u32)>,
    /// Tokens whose text ends here.
    tokens: Vec<u32>,
}

/// The vocabulary of one model, ready for masking.
#[derive(Debug)]
pub struct Vocab {
    nodes: Vec<TrieNode>,
    /// Text of every token (`None` for end and control tokens).
    texts: Vec<Option<Box<[u8]>>>,
    /// End-of-generation tokens.
    ends: Vec<u32>,
}

impl Vocab {
    /// Build from the kind of every token id `0..n`.
    pub fn new(n: usize, kind: impl Fn(u32) -> TokenKind) -> Vocab {
        let mut vocab = Vocab {
            nodes: vec![TrieNode::default()],
            texts: Vec::with_capacity(n),
            ends: Vec::new(),
        };
        for id in 0..n as u32 {
            match kind(id) {
                TokenKind::Text(bytes) if !bytes.is_empty() => {
                    vocab.insert(&bytes, id);
                    vocab.texts.push(Some(bytes.into_boxed_slice()));
                }
                TokenKind::End => {
                    vocab.ends.push(id);
                    vocab.texts.push(None);
                }
                _ => vocab.texts.push(None),
            }
        }
        vocab
    }

    fn insert(&mut self, bytes: &[u8], id: u32) {
        let mut at = 0usize;
        for &b in bytes {
            let children = &self.nodes[at].children;
            at = match children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => children[i].1 as usize,
                Err(i) => {
                    let child = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    self.nodes[at].children.insert(i, (b, child as u32));
                    child
                }
            };
        }
        self.nodes[at].tokens.push(id);
    }

    /// Number of token ids covered.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The text of token `id`, if it is an ordinary token.
    pub fn text(&self, id: u32) -> Option<&[u8]> {
        self.texts.get(id as usize).and_then(|t| t.as_deref())
    }

    /// Whether `id` ends generation.
    pub fn is_end(&self, id: u32) -> bool {
        self.ends.contains(&id)
    }

    /// Which token ids `matcher` allows next: `allowed[id]`.
    pub fn allowed(&self, matcher: &Matcher) -> Vec<bool> {
        let mut allowed = vec![false; self.texts.len()];
        if matcher.can_end() {
            for &id in &self.ends {
                allowed[id as usize] = true;
            }
        }
        if !matcher.can_continue() {
            return allowed;
        }
        // Depth-first over the trie, carrying the matcher state of each prefix.
        // Inside a string most bytes leave the state as it is: those children
        // share their parent's state instead of copying and stepping it.
        let mut states: Vec<Matcher> = vec![matcher.clone()];
        let mut pending: Vec<(u32, usize)> = vec![(0, 0)];
        while let Some((node, at)) = pending.pop() {
            let plain = states[at].in_plain_string();
            for &(b, child) in &self.nodes[node as usize].children {
                let next = if plain && Matcher::is_plain_string_byte(b) {
                    at
                } else {
                    let mut next = states[at].clone();
                    if !next.push_byte(b) {
                        continue;
                    }
                    states.push(next);
                    states.len() - 1
                };
                for &id in &self.nodes[child as usize].tokens {
                    allowed[id as usize] = true;
                }
                if !self.nodes[child as usize].children.is_empty() {
                    pending.push((child, next));
                }
            }
        }
        allowed
    }
}
