//! The audit loop against in-memory doubles of the chain, the providers and
//! the verifier: every round is driven by hand (`Auditor::step`), so the
//! tests are deterministic; seeds come from a fixed-seed RNG.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use agora_types::audit::{draw_audits, is_selected, receipt_leaf, JobProof};
use agora_types::merkle::{self, MerkleProof};
use agora_types::{
    hash_tokens, weights_commitment, AccountId, Amount, ChatMessage, Hash32, JobInput, Keypair,
    ModelId, Price, Receipt, SamplingParams, Transcript, TxKind, Usage,
};
use agora_validator::{
    AuditChain, AuditError, Auditor, AuditorConfig, BatchInfo, CheckOutcome, DisputeInfo,
    FetchError, JobChecker, Judging, ProviderScore, RequestedAudit, Served, TranscriptSource,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The model the auditors set weights for.
const MODEL: ModelId = Hash32([7; 32]);
/// The chain audited; receipts name it unless a test says otherwise.
const CHAIN: &str = "auditor-test";

/// Output token that the double verifier treats as proof of cheating.
const CHEAT_TOKEN: i32 = 666;
/// Output token on which the double verifier itself fails (cannot judge).
const BROKEN_TOKEN: i32 = 999;
/// Output token the double's statistical check finds implausible.
const IMPLAUSIBLE_TOKEN: i32 = 777;

#[derive(Default)]
struct ChainState {
    head: u64,
    batches: Vec<BatchInfo>,
    window: u64,
    disputes: Vec<DisputeInfo>,
    endpoints: HashMap<AccountId, String>,
    submitted: Vec<(AccountId, TxKind)>,
    tempo: u64,
    scores: Vec<ProviderScore>,
    /// Providers flagged on chain as not replayable.
    upstream: HashSet<AccountId>,
    /// Requested audits (`RequestValidation`).
    requests: Vec<RequestedAudit>,
}

/// The chain double: shared state, and the account each auditor signs as.
#[derive(Clone)]
struct FakeChain {
    state: Arc<Mutex<ChainState>>,
    signer: AccountId,
}

impl AuditChain for FakeChain {
    async fn head(&self) -> Result<u64, AuditError> {
        Ok(self.state.lock().unwrap().head)
    }
    async fn batches_since(&self, height: u64) -> Result<Vec<BatchInfo>, AuditError> {
        let s = self.state.lock().unwrap();
        Ok(s.batches
            .iter()
            .filter(|b| b.height > height)
            .cloned()
            .collect())
    }
    async fn validations_since(&self, height: u64) -> Result<Vec<RequestedAudit>, AuditError> {
        let s = self.state.lock().unwrap();
        Ok(s.requests
            .iter()
            .filter(|r| r.height > height)
            .cloned()
            .collect())
    }
    async fn audit_window(&self) -> Result<u64, AuditError> {
        Ok(self.state.lock().unwrap().window)
    }
    async fn disputes(&self) -> Result<Vec<DisputeInfo>, AuditError> {
        Ok(self.state.lock().unwrap().disputes.clone())
    }
    async fn served(&self, provider: &AccountId) -> Result<Option<Served>, AuditError> {
        let s = self.state.lock().unwrap();
        Ok(s.endpoints.get(provider).map(|endpoint| Served {
            endpoint: endpoint.clone(),
            judging: if s.upstream.contains(provider) {
                Judging::Statistical
            } else {
                Judging::Replay
            },
        }))
    }
    async fn tempo_blocks(&self) -> Result<u64, AuditError> {
        Ok(self.state.lock().unwrap().tempo)
    }
    async fn scores(&self, _model: &ModelId) -> Result<Vec<ProviderScore>, AuditError> {
        Ok(self.state.lock().unwrap().scores.clone())
    }
    async fn submit(&self, action: TxKind) -> Result<(), AuditError> {
        let mut s = self.state.lock().unwrap();
        if let TxKind::VoteDispute { dispute, .. } = &action {
            let d = s.disputes.iter_mut().find(|d| &d.id == dispute);
            let d = d.ok_or_else(|| AuditError::Chain("no such dispute".into()))?;
            if d.voted.contains(&self.signer) {
                return Err(AuditError::Chain("already voted".into()));
            }
            d.voted.push(self.signer);
        }
        s.submitted.push((self.signer, action));
        Ok(())
    }
}

/// What a provider double answers for one leaf.
#[derive(Clone)]
enum Answer {
    Serve(JobProof),
    /// Unreachable this many more times, then serves.
    Flaky(u32, JobProof),
    Down,
    NotFound,
}

#[derive(Clone, Default)]
struct FakeProviders {
    answers: Arc<Mutex<HashMap<(Hash32, u64), Answer>>>,
    fetches: Arc<Mutex<u64>>,
}

impl TranscriptSource for FakeProviders {
    async fn fetch(
        &self,
        _endpoint: &str,
        root: &Hash32,
        index: u64,
    ) -> Result<JobProof, FetchError> {
        *self.fetches.lock().unwrap() += 1;
        let mut answers = self.answers.lock().unwrap();
        match answers.get_mut(&(*root, index)) {
            Some(Answer::Serve(job)) => Ok(job.clone()),
            Some(Answer::Flaky(0, job)) => Ok(job.clone()),
            Some(Answer::Flaky(n, _)) => {
                *n -= 1;
                Err(FetchError::Unavailable("connection refused".into()))
            }
            Some(Answer::Down) => Err(FetchError::Unavailable("connection refused".into())),
            Some(Answer::NotFound) | None => Err(FetchError::Missing),
        }
    }
}

/// Verifier double: a job fails iff it contains [`CHEAT_TOKEN`]; judged
/// statistically, a job fails only for [`IMPLAUSIBLE_TOKEN`] (its exact
/// replay is never asked for).
struct FakeChecker;

impl JobChecker for FakeChecker {
    async fn check(&self, t: Transcript, judging: Judging) -> Result<CheckOutcome, AuditError> {
        if t.output_tokens.contains(&BROKEN_TOKEN) {
            return Err(AuditError::Checker("verifier down".into()));
        }
        let passed = match judging {
            Judging::Replay => !t.output_tokens.contains(&CHEAT_TOKEN),
            Judging::Statistical => !t.output_tokens.contains(&IMPLAUSIBLE_TOKEN),
        };
        Ok(CheckOutcome {
            passed,
            evidence: hash_tokens(&t.output_tokens),
            summary: format!("double: passed={passed}"),
        })
    }
}

fn transcript(provider: &Keypair, output: Vec<i32>, seed: u64) -> Transcript {
    transcript_on(CHAIN, provider, output, seed)
}

/// The model every test batch is committed for.
fn batch_model() -> ModelId {
    Hash32::digest(b"model")
}

fn transcript_on(chain: &str, provider: &Keypair, output: Vec<i32>, seed: u64) -> Transcript {
    transcript_for(chain, batch_model(), provider, output, seed)
}

fn transcript_for(
    chain: &str,
    model: ModelId,
    provider: &Keypair,
    output: Vec<i32>,
    seed: u64,
) -> Transcript {
    let prompt = vec![1, 2, 3];
    let receipt = Receipt {
        chain_id: chain.into(),
        id: Hash32::digest(&seed.to_le_bytes()),
        provider: provider.account(),
        model,
        prompt_hash: hash_tokens(&prompt),
        output_hash: hash_tokens(&output),
        text_hash: Hash32::ZERO,
        params: SamplingParams::new(16, 0.7, 1.0, vec![], seed),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: output.len() as u32,
        },
        price: Price::default(),
        cost: 0,
        timestamp_ms: 1,
        commitments: Hash32::ZERO,
    }
    .sign(provider);
    Transcript {
        receipt,
        input: JobInput::Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "hi".into(),
            }],
        },
        prompt_tokens: prompt,
        output_tokens: output,
        commitments: None,
        embeddings: vec![],
    }
}

/// A world: one provider with one batch of `jobs` jobs (those in `cheats`
/// carry the cheat token) committed at height 5, its audits drawn as the
/// chain draws them (under `seed`, at `rate_ppm`), and `auditors` validators.
struct World {
    seed: Hash32,
    rate_ppm: u32,
    chain: Arc<Mutex<ChainState>>,
    providers: FakeProviders,
    provider: Keypair,
    batch: BatchInfo,
    jobs: Vec<JobProof>,
    auditors: Vec<Keypair>,
}

fn world(jobs: u64, cheats: &HashSet<u64>, auditors: usize, rate_ppm: u32, seed: u64) -> World {
    world_with(jobs, cheats, &Lies::default(), auditors, rate_ppm, seed)
}

/// Jobs whose committed receipts lie about where they belong.
#[derive(Default)]
struct Lies {
    /// Receipts signed for another chain.
    other_chain: HashSet<u64>,
    /// Receipts naming another model than the batch was committed for.
    other_model: HashSet<u64>,
}

/// [`world`] where the jobs in `lies` are honestly run but their receipts
/// lie about their chain or model.
fn world_with(
    jobs: u64,
    cheats: &HashSet<u64>,
    lies: &Lies,
    auditors: usize,
    rate_ppm: u32,
    seed: u64,
) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let provider = Keypair::from_seed(rng.gen());
    let transcripts: Vec<Transcript> = (0..jobs)
        .map(|i| {
            let mut out = vec![10, 11, 12];
            if cheats.contains(&i) {
                out.push(CHEAT_TOKEN);
            }
            let chain = if lies.other_chain.contains(&i) {
                "another-network"
            } else {
                CHAIN
            };
            let model = if lies.other_model.contains(&i) {
                Hash32::digest(b"a cheaper model")
            } else {
                batch_model()
            };
            transcript_for(chain, model, &provider, out, i)
        })
        .collect();
    let leaves: Vec<Hash32> = transcripts
        .iter()
        .map(|t| receipt_leaf(&t.receipt))
        .collect();
    let root = merkle::root(&leaves);
    let fetched: Vec<JobProof> = transcripts
        .into_iter()
        .enumerate()
        .map(|(i, transcript)| JobProof {
            transcript,
            proof: MerkleProof::new(&leaves, i).unwrap(),
        })
        .collect();
    let auditors: Vec<Keypair> = (0..auditors)
        .map(|_| Keypair::from_seed(rng.gen()))
        .collect();
    let validators: Vec<(AccountId, Amount)> = auditors
        .iter()
        .map(|k| (k.account(), rng.gen_range(1..1000)))
        .collect();
    let id = Hash32::digest(b"batch");
    let draw = Hash32(rng.gen());
    let batch = BatchInfo {
        id,
        provider: provider.account(),
        root,
        first_index: 0,
        count: jobs,
        height: 5,
        model: Some(batch_model()),
        audits: Some(draw_audits(&draw, &id, 0, jobs, rate_ppm, &validators)),
    };
    let mut state = ChainState {
        head: 7,
        batches: vec![batch.clone()],
        window: 100,
        ..ChainState::default()
    };
    state
        .endpoints
        .insert(provider.account(), "http://provider".into());
    let providers = FakeProviders::default();
    for (i, job) in fetched.iter().enumerate() {
        providers
            .answers
            .lock()
            .unwrap()
            .insert((root, i as u64), Answer::Serve(job.clone()));
    }
    World {
        seed: draw,
        rate_ppm,
        chain: Arc::new(Mutex::new(state)),
        providers,
        provider,
        batch,
        jobs: fetched,
        auditors,
    }
}

fn auditor(w: &World, who: usize) -> Auditor<FakeChain, FakeProviders, FakeChecker> {
    let me = w.auditors[who].account();
    let chain = FakeChain {
        state: w.chain.clone(),
        signer: me,
    };
    Auditor::new(
        chain,
        w.providers.clone(),
        FakeChecker,
        AuditorConfig {
            me,
            chain_id: CHAIN.into(),
            fetch_grace_blocks: 10,
            weights_model: Some(MODEL),
        },
    )
}

/// Everything submitted to the fake chain so far, with its sender, in order.
fn submitted(w: &World) -> Vec<(AccountId, TxKind)> {
    w.chain.lock().unwrap().submitted.clone()
}

fn verdicts(w: &World) -> Vec<(AccountId, u64, bool)> {
    submitted(w)
        .into_iter()
        .filter_map(|(who, a)| match a {
            TxKind::SubmitVerdict { index, passed, .. } => Some((who, index, passed)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn selected_jobs_are_audited_exactly_once_across_validators() {
    for seed in 0..8 {
        let cheats: HashSet<u64> = [3, 17, 40].into();
        let w = world(60, &cheats, 4, 250_000, seed);
        let mut auditors: Vec<_> = (0..4).map(|i| auditor(&w, i)).collect();
        for a in &mut auditors {
            a.step().await.unwrap();
        }
        let selected: Vec<u64> = (0..60)
            .filter(|&i| is_selected(&w.seed, &w.batch.id, i, w.rate_ppm))
            .collect();
        let mut audited: Vec<u64> = verdicts(&w).iter().map(|(_, i, _)| *i).collect();
        audited.sort_unstable();
        assert_eq!(
            audited, selected,
            "seed {seed}: each selected job once, no other"
        );
        let drawn = w.batch.audits.clone().unwrap();
        for (who, index, passed) in verdicts(&w) {
            assert_eq!(passed, !cheats.contains(&index), "seed {seed}, job {index}");
            assert!(
                drawn.contains(&(index, who)),
                "only the drawn auditor judges"
            );
        }
        // A second round repeats nothing.
        for a in &mut auditors {
            a.step().await.unwrap();
        }
        assert_eq!(verdicts(&w).len(), selected.len());
    }
}

/// Issue 13, #9: a provider flagged on chain as not replayable (it
/// forwards to an upstream server) is never judged by exact replay, which
/// its honest jobs would fail; its jobs are judged statistically.
#[tokio::test]
async fn upstream_providers_are_judged_statistically_never_by_exact_replay() {
    // Every job "fails" exact replay (the upstream samples with its own RNG).
    let all: HashSet<u64> = (0..20).collect();
    let w = world(20, &all, 1, 1_000_000, 3);
    let provider = w.provider.account();
    w.chain.lock().unwrap().upstream.insert(provider);
    // One job's tokens are implausible under the model as well.
    let mut implausible = w.jobs[4].clone();
    implausible.transcript.output_tokens.push(IMPLAUSIBLE_TOKEN);
    w.providers
        .answers
        .lock()
        .unwrap()
        .insert((w.batch.root, 4), Answer::Serve(implausible));
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    let got = verdicts(&w);
    assert_eq!(got.len(), 20);
    for (_, index, passed) in got {
        assert_eq!(passed, index != 4, "job {index}");
    }
}

#[tokio::test]
async fn batches_with_no_drawn_audits_are_not_fetched() {
    // A batch drawn with no audits (a rate that picked none).
    let w = world(5, &HashSet::new(), 1, 1_000_000, 7);
    w.chain.lock().unwrap().batches[0].audits = Some(Vec::new());
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    assert!(verdicts(&w).is_empty());
    assert_eq!(*w.providers.fetches.lock().unwrap(), 0);
    assert_eq!(a.pending(), 0);
}

/// A job the sample left out is audited once someone requests it: only by
/// the validator the request names, once, even when the request shows up
/// again on a re-read or in the batch's own audits.
#[tokio::test]
async fn a_requested_audit_is_judged_by_its_drawn_auditor_once() {
    let w = world(5, &HashSet::from([3]), 2, 1_000_000, 7);
    w.chain.lock().unwrap().batches[0].audits = Some(Vec::new());
    let (mut first, mut second) = (auditor(&w, 0), auditor(&w, 1));
    first.step().await.unwrap();
    second.step().await.unwrap();
    assert!(
        verdicts(&w).is_empty(),
        "nothing sampled, nothing requested"
    );
    let named = w.auditors[1].account();
    let mut with_audit = w.batch.clone();
    with_audit.audits = Some(vec![(3, named)]);
    {
        let mut chain = w.chain.lock().unwrap();
        chain.batches[0] = with_audit.clone();
        chain.requests.push(RequestedAudit {
            height: 6,
            index: 3,
            auditor: named,
            batch: with_audit,
        });
    }
    for _ in 0..2 {
        first.step().await.unwrap();
        second.step().await.unwrap();
    }
    assert_eq!(
        verdicts(&w),
        vec![(named, 3, false)],
        "the named validator replays the requested job (a cheat) once; the other does nothing"
    );
}

#[tokio::test]
async fn nothing_is_audited_before_the_chain_draws_the_batch_audits() {
    let w = world(10, &HashSet::new(), 1, 1_000_000, 1);
    let drawn = w.chain.lock().unwrap().batches[0].audits.take();
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    assert!(verdicts(&w).is_empty());
    assert_eq!(*w.providers.fetches.lock().unwrap(), 0);
    w.chain.lock().unwrap().batches[0].audits = drawn;
    a.step().await.unwrap();
    assert_eq!(
        verdicts(&w).len(),
        10,
        "rate 100%: every job, by the only validator"
    );
    assert!(verdicts(&w).iter().all(|(_, _, passed)| *passed));
}

#[tokio::test]
async fn an_unreachable_or_404_provider_is_retried_then_failed_after_the_grace_period() {
    let w = world(3, &HashSet::new(), 1, 1_000_000, 2);
    {
        let mut answers = w.providers.answers.lock().unwrap();
        answers.insert((w.batch.root, 0), Answer::Flaky(2, w.jobs[0].clone()));
        answers.insert((w.batch.root, 1), Answer::Down);
        answers.insert((w.batch.root, 2), Answer::NotFound);
    }
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    // Attack (issue 13, #9): a provider that restarted answers 404 for a
    // while; within the grace period that is retried, never a failure.
    assert!(verdicts(&w).is_empty());
    a.step().await.unwrap();
    a.step().await.unwrap();
    // Job 0 came on the third try and passed; jobs 1 and 2 are still within grace.
    assert_eq!(verdicts(&w), vec![(w.auditors[0].account(), 0, true)]);
    assert_eq!(a.pending(), 2);
    w.chain.lock().unwrap().head = 5 + 11;
    a.step().await.unwrap();
    assert!(verdicts(&w).contains(&(w.auditors[0].account(), 1, false)));
    assert!(verdicts(&w).contains(&(w.auditors[0].account(), 2, false)));
    assert_eq!(a.stats().missing, 2);
    assert_eq!(a.pending(), 0);
}

#[tokio::test]
async fn a_transcript_that_is_not_the_committed_leaf_fails() {
    let w = world(4, &HashSet::new(), 1, 1_000_000, 3);
    {
        // Leaf 1 answers with leaf 2's transcript and proof; leaf 3 with a
        // re-signed transcript whose receipt differs from the committed one.
        let mut answers = w.providers.answers.lock().unwrap();
        answers.insert((w.batch.root, 1), Answer::Serve(w.jobs[2].clone()));
        let mut forged = w.jobs[3].clone();
        forged.transcript = transcript(&w.provider, vec![10, 11, 13], 3);
        answers.insert((w.batch.root, 3), Answer::Serve(forged));
    }
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    let mut got = verdicts(&w);
    got.sort_by_key(|v| v.1);
    let me = w.auditors[0].account();
    assert_eq!(
        got,
        vec![(me, 0, true), (me, 1, false), (me, 2, true), (me, 3, false)]
    );
}

/// Attack: a provider serving two agora networks commits the same job to
/// both, to be counted (and rewarded) twice. Its receipt names the chain it
/// was signed for, so on the other one the committed leaf fails its audit.
#[tokio::test]
async fn a_receipt_signed_for_another_chain_fails_its_audit() {
    let lies = Lies {
        other_chain: [1].into(),
        ..Lies::default()
    };
    let w = world_with(3, &HashSet::new(), &lies, 1, 1_000_000, 4);
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    let mut got = verdicts(&w);
    got.sort_by_key(|v| v.1);
    let me = w.auditors[0].account();
    assert_eq!(got, vec![(me, 0, true), (me, 1, false), (me, 2, true)]);
}

/// Attack (issue 13, #7): a provider commits, in a batch for its model, a
/// receipt naming another (cheaper) model. The drawn auditor fails it at
/// once instead of retrying a job it cannot replay until the window closes.
#[tokio::test]
async fn a_receipt_naming_another_model_than_its_batch_fails_at_once() {
    let lies = Lies {
        other_model: [2].into(),
        ..Lies::default()
    };
    let w = world_with(3, &HashSet::new(), &lies, 1, 1_000_000, 6);
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    let mut got = verdicts(&w);
    got.sort_by_key(|v| v.1);
    let me = w.auditors[0].account();
    assert_eq!(got, vec![(me, 0, true), (me, 1, true), (me, 2, false)]);
}

/// Attack: a transcript the verifier chokes on must not make the auditor
/// discard its whole queue (the other jobs, cheats among them, go unjudged).
#[tokio::test]
async fn a_job_the_verifier_cannot_judge_keeps_the_rest_of_the_queue() {
    let cheats: HashSet<u64> = [2].into();
    let w = world(4, &cheats, 1, 1_000_000, 8);
    {
        let mut answers = w.providers.answers.lock().unwrap();
        let mut broken = w.jobs[0].clone();
        broken.transcript.output_tokens.push(BROKEN_TOKEN);
        answers.insert((w.batch.root, 0), Answer::Serve(broken));
    }
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    let mut got: Vec<(u64, bool)> = verdicts(&w).iter().map(|(_, i, p)| (*i, *p)).collect();
    got.sort_unstable();
    assert_eq!(got, vec![(1, true), (2, false), (3, true)]);
    assert_eq!(
        a.pending(),
        1,
        "the unjudged job is kept for the next round"
    );
}

#[tokio::test]
async fn the_audit_window_closing_drops_the_job() {
    let w = world(2, &HashSet::new(), 1, 1_000_000, 4);
    w.chain.lock().unwrap().head = 5 + 101;
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    assert!(verdicts(&w).is_empty());
    assert_eq!(a.stats().expired, 2);
}

#[tokio::test]
async fn committee_members_vote_once_by_their_own_recheck() {
    let cheats: HashSet<u64> = [1].into();
    let w = world(3, &cheats, 4, 0, 5);
    let committee: Vec<AccountId> = w.auditors[1..3].iter().map(|k| k.account()).collect();
    let dispute = |index: u64, id: &[u8]| DisputeInfo {
        id: Hash32::digest(id),
        batch: w.batch.id,
        root: w.batch.root,
        index,
        leaf_count: 3,
        model: Some(batch_model()),
        provider: w.provider.account(),
        committee: committee.clone(),
        voted: vec![],
        opened_at: 6,
    };
    // One honest accusation (job 1 cheats) and one false one (job 0 is honest).
    w.chain.lock().unwrap().disputes = vec![dispute(1, b"true"), dispute(0, b"false")];
    let mut auditors: Vec<_> = (0..4).map(|i| auditor(&w, i)).collect();
    for _ in 0..2 {
        for a in &mut auditors {
            a.step().await.unwrap();
        }
    }
    let votes: Vec<(AccountId, Hash32, bool)> = submitted(&w)
        .into_iter()
        .filter_map(|(who, a)| match a {
            TxKind::VoteDispute { dispute, agree } => Some((who, dispute, agree)),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 4, "two members × two disputes, once each");
    for (who, id, agree) in votes {
        assert!(committee.contains(&who));
        assert_eq!(agree, id == Hash32::digest(b"true"));
    }
    assert!(verdicts(&w).is_empty(), "rate 0: no audits of its own");
}

#[tokio::test]
async fn weights_are_committed_then_revealed_in_the_next_epoch() {
    let w = world(1, &HashSet::new(), 1, 0, 6);
    let (good, bad) = (AccountId([1; 32]), AccountId([2; 32]));
    {
        let mut s = w.chain.lock().unwrap();
        s.tempo = 20;
        s.head = 21;
        s.scores = vec![
            ProviderScore {
                provider: good,
                passed: 4,
                failed: 0,
                flagged: 0,
                stake: 1_000_000,
                job_value: 62,
            },
            ProviderScore {
                provider: bad,
                passed: 9,
                failed: 1,
                flagged: 0,
                stake: 1_000_000,
                job_value: 62,
            },
        ];
    }
    let mut a = auditor(&w, 0);
    a.step().await.unwrap();
    a.step().await.unwrap();
    let me = w.auditors[0].account();
    let actions: Vec<TxKind> = submitted(&w).into_iter().map(|(_, a)| a).collect();
    let [TxKind::CommitWeights { model, hash }] = actions.as_slice() else {
        panic!("one commitment in epoch 1, nothing else: {actions:?}");
    };
    assert_eq!(*model, MODEL);
    // Near the boundary nothing is sent; in epoch 2 the weights are revealed
    // (matching the commitment) and a new commitment is made.
    w.chain.lock().unwrap().head = 38;
    a.step().await.unwrap();
    assert_eq!(w.chain.lock().unwrap().submitted.len(), 1);
    w.chain.lock().unwrap().head = 41;
    a.step().await.unwrap();
    let actions: Vec<TxKind> = submitted(&w).into_iter().map(|(_, a)| a).collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    let TxKind::RevealWeights {
        model,
        weights,
        salt,
    } = &actions[1]
    else {
        panic!("reveal expected: {actions:?}");
    };
    assert_eq!(
        weights,
        &vec![(good, u16::MAX)],
        "a provider with a failure gets nothing"
    );
    assert_eq!(weights_commitment(&me, model, weights, salt), *hash);
    assert!(matches!(actions[2], TxKind::CommitWeights { .. }));
    assert_eq!((a.stats().weight_commits, a.stats().weight_reveals), (2, 1));
}
