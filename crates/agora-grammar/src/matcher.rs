//! The byte-level matcher: which continuations keep the output a prefix of
//! some value the grammar accepts.
//!
//! It is a pushdown automaton run as a set of stacks (one per way the bytes so
//! far can be read: `anyOf` alternatives, optional properties), advanced one
//! byte at a time. JSON is generated compact: no whitespace between tokens.
//! A stack is complete when it is empty (or holds only a finished number).

use std::sync::Arc;

use crate::schema::{Node, NodeId, Nodes, ANY, ANY_ARRAY, FALSE, NULL, TRUE};

/// Most readings kept at once; more are dropped (deterministically, the
/// largest last), which only ever narrows what is allowed.
const MAX_STACKS: usize = 64;
/// Deepest chain of `anyOf`/`$ref` expanded before one byte is read.
const MAX_EXPANSION: u32 = 32;

/// Where inside a string the last byte left us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Str {
    Plain,
    Escape,
    /// Hex digits of `\u` still due.
    Hex(u8),
    /// `\ud` or `\uD` read: the next digit must keep the code unit below
    /// U+D800, since a surrogate escape (even a paired one) is refused by
    /// strict parsers when it stands alone; characters past U+FFFF are
    /// written as UTF-8 instead.
    HexAfterD,
    /// UTF-8 continuation bytes still due; the next one lies in `lo..=hi`
    /// (narrower than 0x80..=0xBF after leads that would allow overlong
    /// forms, surrogates or code points past U+10FFFF).
    Utf8 {
        due: u8,
        lo: u8,
        hi: u8,
    },
}

/// Most digits in a number's integer or fraction part, so every generated
/// number parses as a finite double.
const MAX_DIGITS: u8 = 20;
/// Most digits in an exponent.
const MAX_EXP_DIGITS: u8 = 2;

/// Where inside a number the last byte left us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Num {
    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
    }

    /// The state after `b` and the digit count of the current part, if `b` continues the number.
    fn next(self, b: u8, integer: bool, digits: u8) -> Option<(Num, u8)> {
        let digit = b.is_ascii_digit();
        match (self, b) {
            (Num::Minus, b'0') => Some((Num::Zero, 1)),
            (Num::Minus, _) if digit => Some((Num::Int, 1)),
            (Num::Int, _) if digit && digits < MAX_DIGITS => Some((Num::Int, digits + 1)),
            (Num::Zero | Num::Int, b'.') if !integer => Some((Num::Dot, 0)),
            (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') if !integer => Some((Num::Exp, 0)),
            (Num::Dot, _) if digit => Some((Num::Frac, 1)),
            (Num::Frac, _) if digit && digits < MAX_DIGITS => Some((Num::Frac, digits + 1)),
            (Num::Exp, b'+' | b'-') => Some((Num::ExpSign, 0)),
            (Num::Exp | Num::ExpSign, _) if digit => Some((Num::ExpDigits, 1)),
            (Num::ExpDigits, _) if digit && digits < MAX_EXP_DIGITS => {
                Some((Num::ExpDigits, digits + 1))
            }
            _ => None,
        }
    }
}

/// Where inside a container the last byte left us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Seq {
    Open,
    AfterValue,
    AfterComma,
}

/// One level of a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Frame {
    /// A value of this node starts at the next byte.
    Value(NodeId),
    /// Inside a literal node, `at` bytes matched.
    Literal { node: NodeId, at: u32 },
    /// Inside property `prop`'s key text of an object node, `at` bytes matched.
    Key { node: NodeId, prop: u32, at: u32 },
    /// Inside a string (a free object key when `key_of` holds the value node).
    Str { state: Str, key_of: Option<NodeId> },
    /// A free key ended; `:` and then a value of this node follow.
    Colon(NodeId),
    /// Inside a number; `digits` in its current part.
    Num {
        state: Num,
        integer: bool,
        digits: u8,
    },
    /// Inside an array node, `count` items begun.
    Array { node: NodeId, count: u32, at: Seq },
    /// Inside a fixed object node; properties before `next` are decided.
    Object { node: NodeId, next: u32, at: Seq },
    /// Inside a free object whose values are `values`.
    Map { values: NodeId, at: Seq },
}

type Stack = Vec<Frame>;

/// The state of a constrained output: every reading of the bytes so far.
#[derive(Clone, Debug)]
pub struct Matcher {
    nodes: Arc<Nodes>,
    stacks: Vec<Stack>,
}

impl Matcher {
    pub(crate) fn new(nodes: Arc<Nodes>) -> Matcher {
        let root = nodes.root;
        Matcher {
            nodes,
            stacks: vec![vec![Frame::Value(root)]],
        }
    }

    /// Whether no continuation can be valid any more.
    pub fn is_dead(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Whether the output may end here: the bytes so far are a whole value.
    pub fn can_end(&self) -> bool {
        self.stacks.iter().any(|s| {
            s.iter()
                .all(|f| matches!(f, Frame::Num { state, .. } if state.complete()))
        })
    }

    /// Whether some byte may follow.
    pub fn can_continue(&self) -> bool {
        self.stacks.iter().any(|s| !s.is_empty())
    }

    /// The matcher after `bytes`, or `None` if they break the grammar.
    pub fn after(&self, bytes: &[u8]) -> Option<Matcher> {
        let mut next = self.clone();
        for &b in bytes {
            if !next.push_byte(b) {
                return None;
            }
        }
        Some(next)
    }

    /// Whether every reading is inside a string with no escape or character
    /// pending, where a [plain byte](Matcher::is_plain_string_byte) changes nothing.
    pub fn in_plain_string(&self) -> bool {
        !self.stacks.is_empty()
            && self.stacks.iter().all(|s| {
                matches!(
                    s.last(),
                    Some(Frame::Str {
                        state: Str::Plain,
                        ..
                    })
                )
            })
    }

    /// Bytes that leave a string in its plain state: printable ASCII but the
    /// quote and the backslash.
    pub fn is_plain_string_byte(b: u8) -> bool {
        (0x20..=0x7f).contains(&b) && b != b'"' && b != b'\\'
    }

    /// Advance by one byte; false (and dead) if it breaks the grammar.
    pub fn push_byte(&mut self, b: u8) -> bool {
        let mut out = Vec::with_capacity(self.stacks.len());
        for stack in std::mem::take(&mut self.stacks) {
            step(&self.nodes, stack, b, 0, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_STACKS);
        self.stacks = out;
        !self.stacks.is_empty()
    }
}

/// What a UTF-8 lead byte expects next (RFC 3629's table), or `None` if
/// `b` cannot start a character.
fn utf8_lead(b: u8) -> Option<Str> {
    let (due, lo, hi) = match b {
        0xc2..=0xdf => (1, 0x80, 0xbf),
        0xe0 => (2, 0xa0, 0xbf),
        0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
        0xed => (2, 0x80, 0x9f),
        0xf0 => (3, 0x90, 0xbf),
        0xf1..=0xf3 => (3, 0x80, 0xbf),
        0xf4 => (3, 0x80, 0x8f),
        _ => return None,
    };
    Some(Str::Utf8 { due, lo, hi })
}

/// Every way `stack` can read byte `b`, pushed to `out`.
fn step(nodes: &Nodes, mut stack: Stack, b: u8, depth: u32, out: &mut Vec<Stack>) {
    let Some(top) = stack.pop() else { return };
    match top {
        Frame::Value(id) => start_value(nodes, stack, id, b, depth, out),
        Frame::Literal { node, at } => {
            let Node::Literal(text) = nodes.get(node) else {
                return;
            };
            if text.get(at as usize) == Some(&b) {
                if at as usize + 1 < text.len() {
                    stack.push(Frame::Literal { node, at: at + 1 });
                }
                out.push(stack);
            }
        }
        Frame::Key { node, prop, at } => {
            let Node::Object { props } = nodes.get(node) else {
                return;
            };
            let p = &props[prop as usize];
            if p.key.get(at as usize) == Some(&b) {
                stack.push(if at as usize + 1 < p.key.len() {
                    Frame::Key {
                        node,
                        prop,
                        at: at + 1,
                    }
                } else {
                    Frame::Value(p.value)
                });
                out.push(stack);
            }
        }
        Frame::Str { state, key_of } => {
            let next = match (state, b) {
                (Str::Plain, b'"') => {
                    if let Some(values) = key_of {
                        stack.push(Frame::Colon(values));
                    }
                    out.push(stack);
                    return;
                }
                (Str::Plain, b'\\') => Str::Escape,
                (Str::Plain, 0x00..=0x1f) => return,
                (Str::Plain, 0x20..=0x7f) => Str::Plain,
                (Str::Plain, 0x80..=0xff) => match utf8_lead(b) {
                    Some(next) => next,
                    None => return,
                },
                (Str::Utf8 { due, lo, hi }, _) if (lo..=hi).contains(&b) => {
                    if due == 1 {
                        Str::Plain
                    } else {
                        Str::Utf8 {
                            due: due - 1,
                            lo: 0x80,
                            hi: 0xbf,
                        }
                    }
                }
                (Str::Escape, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Str::Plain,
                (Str::Escape, b'u') => Str::Hex(4),
                (Str::Hex(4), b'd' | b'D') => Str::HexAfterD,
                (Str::HexAfterD, b'0'..=b'7') => Str::Hex(2),
                (Str::Hex(n), _) if b.is_ascii_hexdigit() => {
                    if n == 1 {
                        Str::Plain
                    } else {
                        Str::Hex(n - 1)
                    }
                }
                _ => return,
            };
            stack.push(Frame::Str {
                state: next,
                key_of,
            });
            out.push(stack);
        }
        Frame::Colon(values) => {
            if b == b':' {
                stack.push(Frame::Value(values));
                out.push(stack);
            }
        }
        Frame::Num {
            state,
            integer,
            digits,
        } => match state.next(b, integer, digits) {
            Some((next, digits)) => {
                stack.push(Frame::Num {
                    state: next,
                    integer,
                    digits,
                });
                out.push(stack);
            }
            // The number ended; the byte belongs to what encloses it.
            None if state.complete() => step(nodes, stack, b, depth, out),
            None => {}
        },
        Frame::Array { node, count, at } => {
            let Node::Array { items, min, max } = *nodes.get(node) else {
                return;
            };
            match (at, b) {
                (Seq::Open, b']') if min == 0 => out.push(stack),
                (Seq::AfterValue, b']') if count >= min => out.push(stack),
                (Seq::AfterValue, b',') if max.is_none_or(|m| count < m) => {
                    stack.push(Frame::Array {
                        node,
                        count,
                        at: Seq::AfterComma,
                    });
                    out.push(stack);
                }
                (Seq::Open | Seq::AfterComma, _) if max.is_none_or(|m| count < m) => {
                    stack.push(Frame::Array {
                        node,
                        count: count + 1,
                        at: Seq::AfterValue,
                    });
                    start_value(nodes, stack, items, b, depth, out);
                }
                _ => {}
            }
        }
        Frame::Object { node, next, at } => {
            let Node::Object { props } = nodes.get(node) else {
                return;
            };
            let rest = &props[next as usize..];
            match (at, b) {
                (Seq::Open | Seq::AfterValue, b'}') if !rest.iter().any(|p| p.required) => {
                    out.push(stack)
                }
                (Seq::AfterValue, b',') if !rest.is_empty() => {
                    stack.push(Frame::Object {
                        node,
                        next,
                        at: Seq::AfterComma,
                    });
                    out.push(stack);
                }
                (Seq::Open | Seq::AfterComma, b'"') => {
                    // Any property up to and including the next required one may come next.
                    let last = rest
                        .iter()
                        .position(|p| p.required)
                        .unwrap_or(rest.len().saturating_sub(1));
                    for i in 0..rest.len().min(last + 1) {
                        let prop = next + i as u32;
                        let mut s = stack.clone();
                        s.push(Frame::Object {
                            node,
                            next: prop + 1,
                            at: Seq::AfterValue,
                        });
                        s.push(Frame::Key { node, prop, at: 1 });
                        out.push(s);
                    }
                }
                _ => {}
            }
        }
        Frame::Map { values, at } => match (at, b) {
            (Seq::Open | Seq::AfterValue, b'}') => out.push(stack),
            (Seq::AfterValue, b',') => {
                stack.push(Frame::Map {
                    values,
                    at: Seq::AfterComma,
                });
                out.push(stack);
            }
            (Seq::Open | Seq::AfterComma, b'"') => {
                stack.push(Frame::Map {
                    values,
                    at: Seq::AfterValue,
                });
                stack.push(Frame::Str {
                    state: Str::Plain,
                    key_of: Some(values),
                });
                out.push(stack);
            }
            _ => {}
        },
    }
}

/// Read `b` as the first byte of a value of node `id`.
fn start_value(
    nodes: &Nodes,
    mut stack: Stack,
    id: NodeId,
    b: u8,
    depth: u32,
    out: &mut Vec<Stack>,
) {
    let literal = |stack: &mut Stack, node: NodeId| {
        let Node::Literal(text) = nodes.get(node) else {
            return false;
        };
        if text.first() != Some(&b) {
            return false;
        }
        if text.len() > 1 {
            stack.push(Frame::Literal { node, at: 1 });
        }
        true
    };
    let number = |stack: &mut Stack, integer: bool| {
        let (state, digits) = match b {
            b'-' => (Num::Minus, 0),
            b'0' => (Num::Zero, 1),
            b'1'..=b'9' => (Num::Int, 1),
            _ => return false,
        };
        stack.push(Frame::Num {
            state,
            integer,
            digits,
        });
        true
    };
    let string = |stack: &mut Stack| {
        if b != b'"' {
            return false;
        }
        stack.push(Frame::Str {
            state: Str::Plain,
            key_of: None,
        });
        true
    };
    let accepted = match nodes.get(id) {
        Node::AnyOf(alts) => {
            if depth < MAX_EXPANSION {
                for &alt in alts {
                    start_value(nodes, stack.clone(), alt, b, depth + 1, out);
                }
            }
            return;
        }
        Node::Any => match b {
            b'{' => {
                stack.push(Frame::Map {
                    values: ANY,
                    at: Seq::Open,
                });
                true
            }
            b'[' => {
                stack.push(Frame::Array {
                    node: ANY_ARRAY,
                    count: 0,
                    at: Seq::Open,
                });
                true
            }
            b't' => literal(&mut stack, TRUE),
            b'f' => literal(&mut stack, FALSE),
            b'n' => literal(&mut stack, NULL),
            b'"' => string(&mut stack),
            _ => number(&mut stack, false),
        },
        Node::Integer => number(&mut stack, true),
        Node::Number => number(&mut stack, false),
        Node::String => string(&mut stack),
        Node::Literal(_) => literal(&mut stack, id),
        Node::Array { .. } if b == b'[' => {
            stack.push(Frame::Array {
                node: id,
                count: 0,
                at: Seq::Open,
            });
            true
        }
        Node::Object { .. } if b == b'{' => {
            stack.push(Frame::Object {
                node: id,
                next: 0,
                at: Seq::Open,
            });
            true
        }
        Node::Map { values } if b == b'{' => {
            stack.push(Frame::Map {
                values: *values,
                at: Seq::Open,
            });
            true
        }
        _ => false,
    };
    if accepted {
        out.push(stack);
    }
}
