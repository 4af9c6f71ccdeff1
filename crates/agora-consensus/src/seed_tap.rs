//! A pass-through around the consensus application that copies the seed of
//! every certificate the engine reports into a [`SeedBook`], so that a leader
//! has its parent round's seed when it proposes.

use commonware_actor::Feedback;
use commonware_consensus::{
    simplex::types::{Activity, Context},
    types::Round,
    Automaton, CertifiableAutomaton, Handoff, Relay, Reporter,
};
use commonware_utils::channel::oneshot;

use crate::block::Digest;
use crate::keys::{PublicKey, Scheme};
use crate::seeds::SeedBook;

/// The engine's automaton, relay and reporter `A`, with the reporter side
/// feeding a [`SeedBook`] before it forwards each activity.
#[derive(Clone)]
pub struct SeedTap<A> {
    inner: A,
    book: SeedBook,
}

impl<A> SeedTap<A> {
    /// Wrap `inner`, recording seeds into `book`.
    pub fn new(inner: A, book: SeedBook) -> Self {
        Self { inner, book }
    }
}

impl<A> Automaton for SeedTap<A>
where
    A: Automaton<Context = Context<Digest, PublicKey>, Digest = Digest>,
{
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        self.inner.propose(context).await
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        self.inner.verify(context, payload).await
    }
}

impl<A> CertifiableAutomaton for SeedTap<A>
where
    A: CertifiableAutomaton<Context = Context<Digest, PublicKey>, Digest = Digest>,
{
    async fn prepare(&mut self, context: Self::Context) -> oneshot::Receiver<Handoff<Digest>> {
        self.inner.prepare(context).await
    }

    async fn certify(&mut self, round: Round, payload: Digest) -> oneshot::Receiver<bool> {
        self.inner.certify(round, payload).await
    }
}

impl<A: Relay> Relay for SeedTap<A> {
    type Digest = A::Digest;
    type PublicKey = A::PublicKey;
    type Plan = A::Plan;

    fn broadcast(&mut self, payload: A::Digest, plan: A::Plan) -> Feedback {
        self.inner.broadcast(payload, plan)
    }
}

impl<A> Reporter for SeedTap<A>
where
    A: Reporter<Activity = Activity<Scheme, Digest>>,
{
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        self.book.observe(&activity);
        self.inner.report(activity)
    }
}
