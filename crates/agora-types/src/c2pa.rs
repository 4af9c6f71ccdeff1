//! A C2PA-style manifest for a generated text: the standard `c2pa.actions`
//! assertion (created by a trained algorithm) and an `org.agora.receipt`
//! assertion carrying the [`OutputEvidence`] that ties the text to a
//! finalized block, so anyone holding the validator set's identity can
//! check it offline.

use serde::{Deserialize, Serialize};

use crate::provenance::{OutputEvidence, ProvenanceError};
use crate::Hash32;

/// The IPTC digital source type of text a model generated.
pub const TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
/// The C2PA action of content created from scratch.
pub const ACTION_CREATED: &str = "c2pa.created";
/// The name of the content hash algorithm: `agora_types::hash_output_text`.
pub const CONTENT_HASH_ALG: &str = "agora-output-text-blake3";

/// The manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The software that made the claim.
    pub claim_generator: String,
    /// Media type of the content.
    pub format: String,
    /// Identifier of this content instance (the job id).
    pub instance_id: String,
    /// The assertions.
    pub assertions: Vec<Assertion>,
}

/// One assertion of a [`Manifest`], labelled as C2PA does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "label", content = "data")]
pub enum Assertion {
    /// `c2pa.actions`: how the content came to be.
    #[serde(rename = "c2pa.actions")]
    Actions(Actions),
    /// `org.agora.receipt`: the evidence of where it came from.
    #[serde(rename = "org.agora.receipt")]
    Receipt(Box<ReceiptAssertion>),
}

/// The `c2pa.actions` assertion's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Actions {
    /// The actions, in order.
    pub actions: Vec<Action>,
}

/// One C2PA action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action, e.g. [`ACTION_CREATED`].
    pub action: String,
    /// IPTC digital source type, e.g. [`TRAINED_ALGORITHMIC_MEDIA`].
    #[serde(rename = "digitalSourceType")]
    pub digital_source_type: String,
    /// What acted (the model).
    #[serde(rename = "softwareAgent")]
    pub software_agent: String,
}

/// The hash of the content the manifest is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentHash {
    /// The algorithm, [`CONTENT_HASH_ALG`].
    pub alg: String,
    /// The hash.
    pub hash: Hash32,
}

/// The `org.agora.receipt` assertion's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptAssertion {
    /// The hash of the content.
    pub content_hash: ContentHash,
    /// Receipt, Merkle proof, block and certificate.
    #[serde(flatten)]
    pub evidence: OutputEvidence,
}

impl Manifest {
    /// The manifest of the output `evidence` proves, made by `generator`.
    pub fn new(generator: &str, evidence: OutputEvidence) -> Self {
        let r = &evidence.receipt.receipt;
        Manifest {
            claim_generator: generator.to_string(),
            format: "text/plain".into(),
            instance_id: format!("agora:job:{}", r.id),
            assertions: vec![
                Assertion::Actions(Actions {
                    actions: vec![Action {
                        action: ACTION_CREATED.into(),
                        digital_source_type: TRAINED_ALGORITHMIC_MEDIA.into(),
                        software_agent: format!("agora model {}", r.model),
                    }],
                }),
                Assertion::Receipt(Box::new(ReceiptAssertion {
                    content_hash: ContentHash {
                        alg: CONTENT_HASH_ALG.into(),
                        hash: r.text_hash,
                    },
                    evidence,
                })),
            ],
        }
    }

    /// The evidence in the `org.agora.receipt` assertion, once the manifest
    /// says the content was created by a trained algorithm and its content
    /// hash is the receipt's text hash.
    pub fn evidence(&self) -> Result<&OutputEvidence, ProvenanceError> {
        let bad = |m: &str| ProvenanceError::Manifest(m.to_string());
        let created = self.assertions.iter().any(|a| match a {
            Assertion::Actions(acts) => acts.actions.iter().any(|x| {
                x.action == ACTION_CREATED && x.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
            }),
            Assertion::Receipt(_) => false,
        });
        if !created {
            return Err(bad("no c2pa.created action by a trained algorithm"));
        }
        let mut receipts = self.assertions.iter().filter_map(|a| match a {
            Assertion::Receipt(r) => Some(r),
            Assertion::Actions(_) => None,
        });
        let (Some(r), None) = (receipts.next(), receipts.next()) else {
            return Err(bad("not exactly one org.agora.receipt assertion"));
        };
        if r.content_hash.alg != CONTENT_HASH_ALG {
            return Err(bad("unknown content hash algorithm"));
        }
        if r.content_hash.hash != r.evidence.receipt.receipt.text_hash {
            return Err(bad("the content hash is not the receipt's text hash"));
        }
        Ok(&r.evidence)
    }
}
