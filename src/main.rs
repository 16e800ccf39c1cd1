use anyhow::Result;
use clap::{Parser, Subcommand};
use oomwatch::cli;

#[derive(Parser)]
#[command(
    name = "oomwatch",
    version,
    about = "Decode kernel OOM kills on Kubernetes nodes"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode OOM kills from a saved kernel log (dmesg, journalctl -k, syslog, raw kmsg)
    Decode(cli::decode::Opts),
    /// Follow the kernel log on this node: log each kill, serve Prometheus metrics
    Run(Box<cli::run::Opts>),
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
    match args.command {
        Command::Run(o) => cli::run::run(*o),
        Command::Decode(o) => {
            let code = cli::decode::run(&o)?;
            std::process::exit(code)
        }
    }
}
