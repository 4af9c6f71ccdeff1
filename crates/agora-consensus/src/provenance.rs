//! Provenance of an output, checked against nothing but the validator set's
//! identity: the pure checks of [`agora_types::provenance`] (text, receipt,
//! Merkle inclusion, block and batch transaction) plus the block's
//! finalization certificate under the group key.

use agora_types::provenance::{
    check_block, check_inclusion, check_receipt, check_text, OutputEvidence, ProvenanceError,
};
use agora_types::Hash32;

use crate::light::FinalityVerifier;

/// What a successful check established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOutput {
    /// The job id.
    pub job: Hash32,
    /// The finalized block holding the batch's transaction.
    pub block: Hash32,
    /// Its height.
    pub height: u64,
}

/// Check `evidence` for `text` under the validator set whose group key is
/// `identity`: (a) the text hash, (b) the receipt signature, (c) the Merkle
/// proof to the batch root, (d) the batch's transaction in a block whose
/// finalization certificate verifies.
pub fn verify_output(
    identity: &[u8],
    evidence: &OutputEvidence,
    text: &str,
) -> Result<VerifiedOutput, ProvenanceError> {
    check_text(&evidence.receipt, text)?;
    verify_receipt(identity, evidence)
}

/// Checks (b) to (d) of [`verify_output`]: everything but the text, for a
/// caller who does not hold it.
pub fn verify_receipt(
    identity: &[u8],
    evidence: &OutputEvidence,
) -> Result<VerifiedOutput, ProvenanceError> {
    check_receipt(&evidence.receipt)?;
    check_inclusion(&evidence.receipt, &evidence.root, &evidence.proof)?;
    check_block(evidence)?;
    let finality = |e: crate::light::LightError| ProvenanceError::Finality(e.to_string());
    let verifier = FinalityVerifier::new(identity).map_err(finality)?;
    let certificate = hex::decode(evidence.certificate.trim())
        .map_err(|e| ProvenanceError::Finality(format!("certificate is not hex: {e}")))?;
    let header = &evidence.block.header;
    let block = header.id();
    verifier.verify(&certificate, block).map_err(finality)?;
    Ok(VerifiedOutput {
        job: evidence.receipt.receipt.id,
        block,
        height: header.height,
    })
}

#[cfg(test)]
mod tests;
