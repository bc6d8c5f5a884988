//! A custom agent in one file: its message types, its `Agent` impl, its registry line and its
//! definition, then a few messages sent to it as an operator.
//!
//! `cargo run --example echo_agent`

use std::time::Duration;

use campaignd::protocol::{Envelope, Payload};
use campaignd::runtime::{
    Agent, AgentError, AgentSpec, Context, HandleCommand, HandleRequest, Registry, Request, Routes,
    Runtime, StartContext,
};
use serde::{Deserialize, Serialize};

/// A request: the echo agent answers with the same text, upper-cased unless muted.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Shout(String);
impl Payload for Shout {
    const ACTION: &'static str = "shout";
}
impl Request for Shout {
    // The type system holds the agent to this: answering anything else does not compile.
    type Response = Echoed;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Echoed(String);
impl Payload for Echoed {
    const ACTION: &'static str = "echoed";
}

/// A command: only an operator or the orchestrator may send it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Mute;
impl Payload for Mute {
    const ACTION: &'static str = "mute";
}

struct EchoAgent {
    muted: bool,
}

impl Agent for EchoAgent {
    const NAME: &'static str = "echo";

    async fn start(ctx: StartContext) -> Result<Self, AgentError> {
        // A real agent rebuilds its state from the knowledge base here (ctx.services).
        println!("{} starting (restarts so far: {})", ctx.name, ctx.restarts);
        Ok(EchoAgent { muted: false })
    }

    fn routes(routes: &mut Routes<Self>) {
        routes.request::<Shout>().command::<Mute>();
    }
}

impl HandleRequest<Shout> for EchoAgent {
    async fn handle_request(
        &mut self,
        ctx: &Context,
        request: Envelope<Shout>,
    ) -> Result<Echoed, AgentError> {
        println!(
            "{} handles {} in chain {}",
            ctx.agent(),
            request.action(),
            ctx.correlation_id()
        );
        let text = request.payload.0;
        Ok(Echoed(if self.muted {
            text.to_lowercase()
        } else {
            text.to_uppercase()
        }))
    }
}

impl HandleCommand<Mute> for EchoAgent {
    async fn handle_command(
        &mut self,
        _ctx: &Context,
        _command: Envelope<Mute>,
    ) -> Result<(), AgentError> {
        self.muted = true;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In the daemon the registry lists every built-in agent and the specs come from agents/*.toml.
    let registry = Registry::new().with::<EchoAgent>("echo");
    let runtime = Runtime::builder(registry)
        .agent(
            AgentSpec::new("echo")
                .with_mailbox(16)
                .with_request_timeout(Duration::from_secs(1)),
        )
        .start()
        .await?;

    let operator = runtime.operator("example");
    let Echoed(loud) = operator.request("echo", Shout("hello".into())).await?;
    println!("answer: {loud}");

    operator.command("echo", Mute).await?;
    let Echoed(quiet) = operator
        .request("echo", Shout("HELLO AGAIN".into()))
        .await?;
    println!("answer after mute: {quiet}");

    match operator.request("nobody", Shout("anyone?".into())).await {
        Ok(_) => println!("unexpected answer"),
        Err(err) => println!("as expected: {err}"),
    }

    for status in runtime.status() {
        println!(
            "{}: {} (restarts {}, in flight {}/{})",
            status.name, status.state, status.restarts, status.in_flight, status.mailbox
        );
    }
    let report = runtime.shutdown(Duration::from_secs(1)).await;
    println!("shut down, drained: {}", report.drained);
    Ok(())
}
