//! `clonesync`: the local demo, local pipelines and preflight (see
//! [`args::USAGE`]). Exit status: 0 success, 1 the work failed (a failed
//! check, a failed execution, tables that differ, an error), 2 usage.

#[macro_use]
mod out;
mod args;
mod demo;
mod interrupt;
mod local;
mod show;

use args::Command;
use std::process::ExitCode;

fn init_logging() {
    let level = match std::env::var("CLONESYNC_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("info") => tracing::Level::INFO,
        Ok("debug") => tracing::Level::DEBUG,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(command) => command,
        Err(args::UsageError(problem)) => {
            warn_user!("clonesync: {problem}");
            out::own_text_error(&format!("\n{}", args::USAGE));
            return ExitCode::from(2);
        }
    };
    if let Command::Help = command {
        out::own_text(args::USAGE);
        return ExitCode::SUCCESS;
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            warn_user!("clonesync: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Help => Ok(true),
            Command::Demo(options) => demo::run(options).await,
            Command::LocalUp(options) => local::up(options).await,
            Command::LocalStatus(dir) => local::status(dir).await,
            Command::LocalDown(dir) => local::down(dir).await,
            Command::LocalPause(dir) => local::pause(dir, true).await,
            Command::LocalResume(dir) => local::pause(dir, false).await,
            Command::LocalReseed(dir) => local::reseed(dir).await,
            Command::LocalRefresh(dir) => local::refresh(dir).await,
            Command::LocalDrift(dir) => local::drift(dir).await,
            Command::Verify(args) => local::verify(args).await,
            Command::Sequences(dir, headroom) => local::sequences(dir, headroom).await,
            Command::Switchover(args) => local::switchover(args).await,
            Command::Preflight(options) => local::preflight(options).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            warn_user!("clonesync: {} ({})", error, error.name());
            ExitCode::FAILURE
        }
    }
}
