//! The `Agent` trait and how an agent declares the messages it handles.
//!
//! An agent is a plain struct: its fields are its working state. [`Agent::start`] builds it (and
//! rebuilds it after every restart, from durable storage); [`Agent::routes`] lists the message types
//! it handles, and one `HandleRequest` / `HandleEvent` / `HandleCommand` impl per type does the work.
//! The message types belong to the agent's own module: nothing here or in `protocol` changes when an
//! agent is added. This module must never know any particular agent or message.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::protocol::{AgentName, Envelope, Kind, Payload, Topic};

use super::clock::Clock;
use super::context::{Context, Me};
use super::error::AgentError;
use super::services::Services;
use super::spec::AgentSpec;
use super::topic::EventTopic;

/// A request payload names its response type, so a handler that answers with the wrong type does
/// not compile.
pub trait Request: Payload {
    type Response: Payload;
}

/// Which header of a message picks the worker that handles it, when an agent runs as several
/// workers ([`AgentSpec::workers`]). All messages with the same key go to the same worker, in the
/// order they were sent; a message without the key goes to the first worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardBy {
    /// The envelope's campaign: the agent's state is per campaign.
    Campaign,
    /// The envelope's tenant: the agent keeps state shared by a tenant's campaigns (compliance's
    /// consent ledger), which must see every change to it in order.
    Tenant,
}

/// An agent: a supervised actor whose fields are its working state.
///
/// The runtime may run several instances of it side by side (its workers), each built by its own
/// [`Agent::start`] and each holding the state of the campaigns routed to it by [`Agent::SHARD_BY`].
/// Load a campaign's state when its first message arrives rather than all of it at start, and
/// nothing else changes for the agent.
pub trait Agent: Sized + Send + 'static {
    /// The agent's name: the name of its `agents/<name>.toml`, what the registry runs it under,
    /// and how peers address it (`ctx.request(Strategy::NAME, …)`), written once.
    const NAME: &'static str;

    /// What keeps one worker's messages apart from another's; per campaign unless the agent's
    /// state spans a tenant's campaigns.
    const SHARD_BY: ShardBy = ShardBy::Campaign;

    /// Builds the agent's working state. Runs at the first start and again after every restart, so
    /// it must rebuild from durable storage (reach it through `ctx.services`) rather than assume a
    /// fresh system. An error here counts as a failure of the agent.
    fn start(ctx: StartContext) -> impl Future<Output = Result<Self, AgentError>> + Send;

    /// Declares the message types this agent handles and the topics it publishes on, e.g.
    /// `routes.request::<PlanCampaign>().event::<SpendRecorded>().command::<Pause>().publishes(GOAL_ACHIEVED);`.
    /// Each line needs the matching `Handle…` impl, so a declared route without a handler does not
    /// compile, and a message type not declared here is refused at the sender's side.
    fn routes(routes: &mut Routes<Self>);
}

/// Answers requests of type `R`.
pub trait HandleRequest<R: Request>: Agent {
    /// Returning `Err` fails the request *and* restarts the agent; put business refusals in the
    /// response type instead.
    fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<R>,
    ) -> impl Future<Output = Result<R::Response, AgentError>> + Send;
}

/// Receives events of type `E` from the topics the agent subscribes to.
pub trait HandleEvent<E: Payload + Clone>: Agent {
    fn handle_event(
        &mut self,
        ctx: &Context,
        event: Envelope<E>,
    ) -> impl Future<Output = Result<(), AgentError>> + Send;
}

/// Carries out commands of type `C`. The runtime has already checked that the sender may give
/// orders.
pub trait HandleCommand<C: Payload>: Agent {
    fn handle_command(
        &mut self,
        ctx: &Context,
        command: Envelope<C>,
    ) -> impl Future<Output = Result<(), AgentError>> + Send;
}

/// What an agent gets when it (re)starts.
#[derive(Clone, Debug)]
pub struct StartContext {
    pub name: AgentName,
    pub spec: AgentSpec,
    /// Shared services the application provided (the knowledge base, …).
    pub services: Services,
    pub clock: Clock,
    /// How many times this agent has been restarted since the runtime started (0 at first start).
    pub restarts: u32,
    /// Which of the agent's workers this is (0-based), of `spec.workers`.
    pub worker: usize,
}

pub(crate) type AnyBox = Box<dyn Any + Send>;

/// A message in a mailbox with its type erased: a boxed `Envelope<P>` for one receiver, or one
/// `Arc<Envelope<P>>` shared by every subscriber of an event, so a publish allocates once however
/// many agents subscribe.
pub(crate) enum Body {
    One(AnyBox),
    Shared(Arc<dyn Any + Send + Sync>),
}
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A handler with its payload type erased: takes a boxed `Envelope<P>`, answers a boxed response.
type Handler<A> =
    for<'a> fn(&'a mut A, &'a Arc<Me>, Body) -> BoxFuture<'a, Result<AnyBox, AgentError>>;

/// The message types an agent handles, by kind and payload type.
pub struct Routes<A> {
    handlers: HashMap<(Kind, TypeId), Handler<A>>,
    publishes: Vec<Topic>,
}

impl<A: Agent> Routes<A> {
    pub(crate) fn of_agent() -> Self {
        let mut routes = Routes {
            handlers: HashMap::new(),
            publishes: Vec::new(),
        };
        A::routes(&mut routes);
        routes
    }

    /// Handles requests of type `R` with `<A as HandleRequest<R>>::handle_request`.
    pub fn request<R: Request>(&mut self) -> &mut Self
    where
        A: HandleRequest<R>,
    {
        self.handlers
            .insert((Kind::Request, TypeId::of::<R>()), call_request::<A, R>);
        self
    }

    /// Handles events of type `E` published on any topic the agent subscribes to.
    pub fn event<E: Payload + Clone>(&mut self) -> &mut Self
    where
        A: HandleEvent<E>,
    {
        self.handlers
            .insert((Kind::Event, TypeId::of::<E>()), call_event::<A, E>);
        self
    }

    /// Handles commands of type `C`.
    pub fn command<C: Payload>(&mut self) -> &mut Self
    where
        A: HandleCommand<C>,
    {
        self.handlers
            .insert((Kind::Command, TypeId::of::<C>()), call_command::<A, C>);
        self
    }

    /// Declares that this agent publishes events of type `E` on `topic`, so that a subscription
    /// to it is known to have a publisher.
    pub fn publishes<E: Payload>(&mut self, topic: EventTopic<E>) -> &mut Self {
        self.publishes.push(topic.into());
        self
    }

    pub(crate) fn published(&self) -> &[Topic] {
        &self.publishes
    }

    pub(crate) fn get(&self, kind: Kind, type_id: TypeId) -> Option<Handler<A>> {
        self.handlers.get(&(kind, type_id)).copied()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = (Kind, TypeId)> + '_ {
        self.handlers.keys().copied()
    }
}

/// Opens a boxed `Envelope<P>` for its handler: the envelope and a context that continues its
/// chain. The actor, not this function, runs the handler inside the `handle` span that carries the
/// chain's ids. The runtime only routes a message to the handler registered for its type, so a
/// mismatch would be a runtime bug, reported as a failure rather than a panic.
fn open<P: Payload + Clone>(
    me: &Arc<Me>,
    body: Body,
) -> Result<(Context, Envelope<P>), AgentError> {
    let wrong = || {
        AgentError::msg(format!(
            "runtime routed a message that is not {}",
            P::ACTION
        ))
    };
    let envelope = match body {
        Body::One(boxed) => *boxed.downcast::<Envelope<P>>().map_err(|_| wrong())?,
        // The last subscriber to get here takes the envelope; the others copy it on their own
        // thread, where allocating and freeing is cheap.
        Body::Shared(shared) => {
            let shared = shared.downcast::<Envelope<P>>().map_err(|_| wrong())?;
            Arc::try_unwrap(shared).unwrap_or_else(|shared| Envelope::clone(&shared))
        }
    };
    let ctx = Context::for_message(me, &envelope);
    Ok((ctx, envelope))
}

fn open_one<P: Payload>(me: &Arc<Me>, body: Body) -> Result<(Context, Envelope<P>), AgentError> {
    let Body::One(boxed) = body else {
        return Err(AgentError::msg(format!(
            "runtime shared a {} that has one receiver",
            P::ACTION
        )));
    };
    let envelope = *boxed.downcast::<Envelope<P>>().map_err(|_| {
        AgentError::msg(format!(
            "runtime routed a message that is not {}",
            P::ACTION
        ))
    })?;
    let ctx = Context::for_message(me, &envelope);
    Ok((ctx, envelope))
}

fn call_request<'a, A: HandleRequest<R>, R: Request>(
    agent: &'a mut A,
    me: &'a Arc<Me>,
    body: Body,
) -> BoxFuture<'a, Result<AnyBox, AgentError>> {
    Box::pin(async move {
        let (ctx, request) = open_one::<R>(me, body)?;
        let response = agent.handle_request(&ctx, request).await?;
        Ok(Box::new(response) as AnyBox)
    })
}

fn call_event<'a, A: HandleEvent<E>, E: Payload + Clone>(
    agent: &'a mut A,
    me: &'a Arc<Me>,
    body: Body,
) -> BoxFuture<'a, Result<AnyBox, AgentError>> {
    Box::pin(async move {
        let (ctx, event) = open::<E>(me, body)?;
        agent.handle_event(&ctx, event).await?;
        Ok(Box::new(()) as AnyBox)
    })
}

fn call_command<'a, A: HandleCommand<C>, C: Payload>(
    agent: &'a mut A,
    me: &'a Arc<Me>,
    body: Body,
) -> BoxFuture<'a, Result<AnyBox, AgentError>> {
    Box::pin(async move {
        let (ctx, command) = open_one::<C>(me, body)?;
        agent.handle_command(&ctx, command).await?;
        Ok(Box::new(()) as AnyBox)
    })
}
