//! `agora node`: one chain node, either the single-node block producer or,
//! with `--validators`, one validator of a BFT set.

use std::path::Path;

use agora_chain::{Seat, Timeouts, ValidatorSetup};
use anyhow::{bail, Context, Result};

use crate::cli::NodeArgs;
use crate::shutdown::Shutdown;
use crate::{devnet, genesis, keys, roles};

/// Run the node until Ctrl-C or SIGTERM.
pub async fn run(args: NodeArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let validator = validator_setup(&args)?;
    if let Some(v) = &validator {
        println!(
            "consensus identity: {}",
            identity_hex(v.devnet_seed, v.peers.len())?
        );
        println!("consensus key: {}", consensus_key_hex(v));
    }
    let genesis = match (&args.genesis, &validator) {
        (Some(path), _) => genesis::load_or_create(path, &[])?,
        (None, Some(_)) => bail!("validators must share one genesis: pass --genesis FILE"),
        (None, None) => {
            let faucet = keys::load_or_create(&args.data_dir.join("faucet.key"))?;
            println!("faucet key: {}", args.data_dir.join("faucet.key").display());
            genesis::load_or_create(&args.data_dir.join("genesis.toml"), &[faucet.account()])?
        }
    };
    let node = roles::start_node(
        &args.data_dir,
        &genesis,
        args.rpc,
        args.block_ms,
        validator,
        shutdown,
    )
    .await?;
    println!("chain RPC: {}", node.rpc_url);
    println!("agora node ready");
    devnet::join(node.tasks).await
}

/// The validator setup `--validators` asks for, if any.
fn validator_setup(args: &NodeArgs) -> Result<Option<ValidatorSetup>> {
    if args.validators.is_empty() {
        return Ok(None);
    }
    let dealer = args
        .dealer_key
        .as_deref()
        .context("a validator needs --dealer-key (the key its threshold share is dealt from)")?;
    let seat = match (&args.join_key, args.p2p_listen) {
        (Some(path), Some(listen)) => Seat::Joiner {
            key_seed: keys::load_or_create(path)?.seed(),
            listen,
        },
        (Some(_), None) => bail!("--join-key needs --p2p-listen (the address peers dial)"),
        (None, _) => Seat::Genesis(args.validator_index),
    };
    if matches!(seat, Seat::Genesis(i) if i >= args.validators.len()) {
        bail!(
            "--validator-index {} is outside the {} addresses of --validators",
            args.validator_index,
            args.validators.len()
        );
    }
    Ok(Some(ValidatorSetup {
        devnet_seed: dealer_seed(dealer)?,
        seat,
        peers: args.validators.clone(),
        consensus_dir: args.data_dir.join("consensus"),
        timeouts: Timeouts::default(),
    }))
}

/// The ed25519 key a validator signs consensus with (hex): what `agora
/// announce --consensus-key` takes.
fn consensus_key_hex(setup: &ValidatorSetup) -> String {
    hex::encode(setup.seat.consensus_key(setup.devnet_seed))
}

/// The dealing seed: the first 8 bytes of the dealer key's seed.
pub fn dealer_seed(path: &Path) -> Result<u64> {
    let key = keys::load(path)?;
    let seed = key.seed();
    let mut first = [0u8; 8];
    first.copy_from_slice(&seed[..8]);
    Ok(u64::from_le_bytes(first))
}

/// The validator set's public identity (BLS group key, hex): what light clients trust.
pub fn identity_hex(seed: u64, validators: usize) -> Result<String> {
    let identity = agora_consensus::devnet_identity(seed, validators)
        .context("dealing the validators' threshold keys")?;
    Ok(hex::encode(identity))
}
