//! The agent registry through real blocks: registration bonds stake and
//! expires without heartbeats, updates carry the next sequence (a replayed
//! one is refused), log anchors only ever extend, and reputation comes only
//! from clients who paid the agent on chain: one feedback per payment,
//! none from the agent itself or a stranger, none after the window,
//! revocable only by its author.

mod common;

use agora_ledger::{State, TxError};
use agora_types::agent::agent_payment_id;
use agora_types::{AgentEndpoint, AgentProfile, Hash32, Keypair, ModelEntry, TxKind};
use proptest::prelude::*;

use common::{block, send};

const CHAIN: &str = "agents-test";
const TTL: u64 = 10;
const WINDOW: u64 = 5;

fn model() -> ModelEntry {
    common::model(b"agent model", "smol")
}

fn profile(name: &str) -> AgentProfile {
    AgentProfile {
        name: name.into(),
        endpoints: vec![AgentEndpoint {
            url: "http://127.0.0.1:7000".into(),
            protocol: "openai-chat".into(),
            weight: 1,
        }],
        capabilities: vec!["summarise".into()],
        models: vec![model().id],
        metadata_hash: Hash32::digest(b"registration file"),
    }
}

/// Keys: 0 the agent, 1 and 2 clients, 3 a stranger.
fn world() -> (State, Vec<Keypair>, u128) {
    let k = common::keys(4, 60);
    let mut g = common::genesis(CHAIN, &k, 100_000, vec![model()]);
    g.params.agents.heartbeat_ttl_blocks = TTL;
    g.params.agents.feedback_window_blocks = WINDOW;
    g.params.agents.max_log_anchors = 3;
    let s = g.state().unwrap();
    let supply = s.total_supply();
    (s, k, supply)
}

fn ok(s: &mut State, key: &Keypair, kind: TxKind) {
    if let Some(e) = send(s, key, kind) {
        panic!("rejected: {e}");
    }
}

fn register(stake: u64) -> TxKind {
    TxKind::RegisterAgent {
        profile: profile("watcher"),
        stake,
    }
}

fn conserved(s: &State, supply: u128) {
    assert_eq!(s.total_supply() + s.burned, supply + s.emitted);
}

#[test]
fn an_agent_bonds_updates_in_sequence_expires_and_gets_its_stake_back() {
    let (mut s, k, supply) = world();
    let agent = k[0].clone();
    let before = s.account(&agent.account()).balance;
    assert!(matches!(
        send(&mut s, &agent, register(999)),
        Some(TxError::InvalidField { field: "stake", .. })
    ));
    ok(&mut s, &agent, register(1_000));
    assert_eq!(s.account(&agent.account()).balance, before - 1_000);
    assert!(matches!(
        send(&mut s, &agent, register(1_000)),
        Some(TxError::AgentExists(_))
    ));
    let entry = &s.agents[&agent.account()];
    assert_eq!((entry.sequence, entry.stake), (0, 1_000));
    assert!(entry.live_at(s.height + TTL - 1));

    let update = |sequence, name: &str| TxKind::UpdateAgent {
        sequence,
        profile: profile(name),
    };
    ok(&mut s, &agent, update(1, "watcher-2"));
    assert_eq!(s.agents[&agent.account()].profile.name, "watcher-2");
    for (stale, why) in [(1, "replayed"), (3, "skipped")] {
        assert!(
            matches!(
                send(&mut s, &agent, update(stale, "old")),
                Some(TxError::AgentSequence { expected: 2, .. })
            ),
            "{why} sequence accepted"
        );
    }
    assert!(matches!(
        send(&mut s, &k[3], update(1, "hijack")),
        Some(TxError::UnknownAgent(_))
    ));

    // Without heartbeats it stops being live; a heartbeat brings it back.
    let expires = s.agents[&agent.account()].expires_at;
    while s.height <= expires {
        block(&mut s, None);
    }
    assert!(!s.agents[&agent.account()].live_at(s.height));
    ok(&mut s, &agent, TxKind::AgentHeartbeat);
    assert!(s.agents[&agent.account()].live_at(s.height));

    ok(&mut s, &agent, TxKind::DeregisterAgent);
    assert!(!s.agents.contains_key(&agent.account()));
    assert_eq!(s.account(&agent.account()).balance, before);
    assert!(matches!(
        send(&mut s, &agent, TxKind::AgentHeartbeat),
        Some(TxError::UnknownAgent(_))
    ));
    conserved(&s, supply);
}

#[test]
fn malformed_profiles_are_refused() {
    let (mut s, k, _) = world();
    let mut bad = Vec::new();
    let mut p = profile("x");
    p.models = vec![Hash32::digest(b"no such model")];
    bad.push((p, "unknown model"));
    let mut p = profile("x");
    p.endpoints[0].url = "ftp://example".into();
    bad.push((p, "non-http endpoint"));
    let mut p = profile("x");
    p.capabilities = vec!["a".into(), "a".into()];
    bad.push((p, "repeated capability"));
    let mut p = profile("x");
    p.capabilities = (0..17).map(|i| format!("c{i}")).collect();
    bad.push((p, "too many capabilities"));
    let mut p = profile("x");
    p.name = "n".repeat(129);
    bad.push((p, "long name"));
    let mut p = profile("x");
    p.name = "line\nbreak".into();
    bad.push((p, "control character"));
    for (profile, why) in bad {
        let refused = send(
            &mut s,
            &k[0],
            TxKind::RegisterAgent {
                profile,
                stake: 1_000,
            },
        );
        assert!(refused.is_some(), "{why} accepted");
    }
    assert!(s.agents.is_empty());
}

#[test]
fn log_anchors_only_extend_and_are_capped() {
    let (mut s, k, _) = world();
    let agent = k[0].clone();
    let anchor = |count: u64| TxKind::AnchorAgentLog {
        count,
        root: Hash32::digest(&count.to_le_bytes()),
        head: Hash32::digest(&[count as u8]),
    };
    assert!(matches!(
        send(&mut s, &agent, anchor(3)),
        Some(TxError::UnknownAgent(_))
    ));
    ok(&mut s, &agent, register(1_000));
    assert!(matches!(
        send(&mut s, &agent, anchor(0)),
        Some(TxError::BadAnchor(_))
    ));
    ok(&mut s, &agent, anchor(3));
    for rewrite in [3, 2] {
        assert!(
            matches!(
                send(&mut s, &agent, anchor(rewrite)),
                Some(TxError::BadAnchor(_))
            ),
            "an anchor over {rewrite} entries rewrote history"
        );
    }
    ok(&mut s, &agent, anchor(5));
    ok(&mut s, &agent, anchor(9));
    assert!(matches!(
        send(&mut s, &agent, anchor(12)),
        Some(TxError::BadAnchor(_))
    ));
    let counts: Vec<u64> = s.agents[&agent.account()]
        .anchors
        .iter()
        .map(|a| a.count)
        .collect();
    assert_eq!(counts, vec![3, 5, 9]);
}

#[test]
fn only_paying_clients_rate_an_agent_once_per_payment() {
    let (mut s, k, supply) = world();
    let (agent, client, other, stranger) = (k[0].clone(), k[1].clone(), k[2].clone(), k[3].clone());
    ok(&mut s, &agent, register(1_000));
    let pay = |amount| TxKind::PayAgent {
        agent: agent.account(),
        amount,
        reference: Hash32::digest(b"job 1"),
    };
    assert!(matches!(
        send(&mut s, &agent, pay(100)),
        Some(TxError::FeedbackRefused(_))
    ));
    assert!(matches!(
        send(&mut s, &client, pay(9)),
        Some(TxError::InvalidField {
            field: "amount",
            ..
        })
    ));
    let agent_before = s.account(&agent.account()).balance;
    let payment = agent_payment_id(&client.account(), s.account(&client.account()).nonce);
    ok(&mut s, &client, pay(100));
    assert_eq!(s.account(&agent.account()).balance, agent_before + 100);
    assert_eq!(s.agents[&agent.account()].reputation.paid, 100);

    let rate = |payment, score| TxKind::GiveFeedback {
        payment,
        score,
        tag: "summary".into(),
    };
    assert!(matches!(
        send(&mut s, &stranger, rate(payment, 0)),
        Some(TxError::FeedbackRefused(_))
    ));
    assert!(matches!(
        send(&mut s, &agent, rate(payment, 100)),
        Some(TxError::FeedbackRefused(_))
    ));
    assert!(matches!(
        send(&mut s, &client, rate(payment, 101)),
        Some(TxError::InvalidField { field: "score", .. })
    ));
    assert!(matches!(
        send(&mut s, &client, rate(Hash32::digest(b"made up"), 10)),
        Some(TxError::NoFeedbackRight(_))
    ));
    ok(&mut s, &client, rate(payment, 80));
    assert!(
        matches!(
            send(&mut s, &client, rate(payment, 100)),
            Some(TxError::NoFeedbackRight(_))
        ),
        "a second feedback for one payment"
    );
    let second = agent_payment_id(&other.account(), s.account(&other.account()).nonce);
    ok(&mut s, &other, pay(50));
    ok(&mut s, &other, rate(second, 40));
    let r = s.agents[&agent.account()].reputation;
    assert_eq!((r.count, r.score_sum, r.paid), (2, 120, 150));
    assert_eq!(r.mean(), Some(60.0));

    // Only the author revokes, once.
    assert!(matches!(
        send(&mut s, &stranger, TxKind::RevokeFeedback { payment }),
        Some(TxError::FeedbackRefused(_))
    ));
    ok(&mut s, &client, TxKind::RevokeFeedback { payment });
    assert!(matches!(
        send(&mut s, &client, TxKind::RevokeFeedback { payment }),
        Some(TxError::FeedbackRefused(_))
    ));
    let r = s.agents[&agent.account()].reputation;
    assert_eq!((r.count, r.score_sum, r.revoked), (1, 40, 1));

    // A payment not rated within the window entitles nothing.
    let late = agent_payment_id(&client.account(), s.account(&client.account()).nonce);
    ok(&mut s, &client, pay(10));
    for _ in 0..=WINDOW {
        block(&mut s, None);
    }
    assert!(matches!(
        send(&mut s, &client, rate(late, 100)),
        Some(TxError::NoFeedbackRight(_))
    ));
    assert!(
        s.agent_payments.is_empty(),
        "expired payments leave the state"
    );
    conserved(&s, supply);
}

#[test]
fn revoking_old_feedback_never_touches_a_new_registration() {
    let (mut s, k, _) = world();
    let (agent, client) = (k[0].clone(), k[1].clone());
    ok(&mut s, &agent, register(1_000));
    let payment = agent_payment_id(&client.account(), s.account(&client.account()).nonce);
    let pay = TxKind::PayAgent {
        agent: agent.account(),
        amount: 10,
        reference: Hash32::ZERO,
    };
    ok(&mut s, &client, pay);
    ok(
        &mut s,
        &client,
        TxKind::GiveFeedback {
            payment,
            score: 0,
            tag: "bad".into(),
        },
    );
    ok(&mut s, &agent, TxKind::DeregisterAgent);
    ok(&mut s, &agent, register(1_000));
    ok(&mut s, &client, TxKind::RevokeFeedback { payment });
    assert_eq!(
        s.agents[&agent.account()].reputation,
        Default::default(),
        "the fresh registration's reputation is untouched"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Whatever sequence of payments, feedback and revocations clients
    /// send, the agent's summary equals the sum over its live feedback and
    /// no base unit appears or vanishes.
    #[test]
    fn the_summary_always_matches_the_feedback(
        ops in prop::collection::vec((0usize..3, 0u8..=100, any::<bool>()), 1..12)
    ) {
        let (mut s, k, supply) = world();
        let agent = k[0].clone();
        ok(&mut s, &agent, register(1_000));
        let mut payments = Vec::new();
        for (who, score, revoke) in ops {
            let client = &k[1 + who % 2];
            let id = agent_payment_id(&client.account(), s.account(&client.account()).nonce);
            let pay = TxKind::PayAgent { agent: agent.account(), amount: 10, reference: Hash32::ZERO };
            prop_assert!(send(&mut s, client, pay).is_none());
            let rate = TxKind::GiveFeedback { payment: id, score, tag: "t".into() };
            prop_assert!(send(&mut s, client, rate).is_none());
            if revoke {
                let revoke = TxKind::RevokeFeedback { payment: id };
                prop_assert!(send(&mut s, client, revoke).is_none());
            }
            payments.push(id);
        }
        let live: Vec<_> = payments.iter().map(|p| &s.feedback[p]).filter(|f| !f.revoked).collect();
        let r = s.agents[&agent.account()].reputation;
        prop_assert_eq!(r.count, live.len() as u64);
        prop_assert_eq!(r.score_sum, live.iter().map(|f| u64::from(f.score)).sum::<u64>());
        prop_assert_eq!(r.paid, 10 * payments.len() as u128);
        conserved(&s, supply);
    }
}
