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
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Decode(o) => {
            let code = cli::decode::run(&o)?;
            std::process::exit(code)
        }
    }
}
