//! The pages `callqc serve` serves: self-contained HTML (no external resources), Chinese UI.
//! Everything shown from the server is set as text, never as HTML.

/// The agent's desktop page: sign in with the agent's token; a small pop-up per warning of
/// their own calls, fading after a few seconds; a quiet status line otherwise.
pub const AGENT: &str = include_str!("pages/agent.html");

/// The supervisor page: calls in progress, each agent's state, warnings and utterances as they
/// happen.
pub const SUPERVISOR: &str = include_str!("pages/supervisor.html");

/// The trainer page: sign in with a reviewer token; the flagged list with filters, a call's
/// transcript, findings and clips with confirm / dismiss / note, the rules table.
pub const TRAINER: &str = include_str!("pages/trainer.html");
