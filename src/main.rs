//! The `callqc` command line: parse arguments, run one command, report errors at the edge.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if !matches!(
        args.command,
        cli::Command::Serve(_) | cli::Command::Simulate(_)
    ) {
        quiet_on_closed_pipe();
    }
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line per cause: the chain says what failed and why, without a backtrace.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}

/// `callqc show CALL | head` must end quietly when `head` closes the pipe, not panic with
/// "failed printing to stdout". The Rust runtime ignores SIGPIPE (so writes fail with EPIPE and
/// `println!` panics); the printing commands get the default action back and end like any Unix
/// filter. The server and the simulator keep ignoring it: a peer closing a socket must be an
/// error to handle, never the end of the process.
fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
