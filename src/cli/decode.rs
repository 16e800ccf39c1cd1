//! `oomwatch decode`: read a saved log, print one line (or JSON object) per kill.

use crate::decode::{self, Decoded};
use crate::eviction::config::{parse_flag, Eviction, Threshold};
use crate::eviction::verdict;
use crate::text;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct Opts {
    /// Log file to read; `-` reads standard input
    pub file: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The kubelet's memory.available hard eviction threshold, for the
    /// estimated verdict of global kills (100Mi, 5%)
    #[arg(long, default_value = "100Mi", value_parser = parse_flag)]
    pub eviction_hard: Threshold,
}

/// An estimated verdict for every kill: from Mem-Info for global kills.
pub fn judge_all(d: &mut Decoded, ev: &Eviction) {
    for k in &mut d.kills {
        verdict::estimate(k, ev);
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// One readable line per kill, then a summary
    Text,
    /// One JSON object per kill (NDJSON); the summary goes to stderr
    Json,
}

/// Decode a file, or standard input for `-`, streaming.
pub fn decode_path(path: &Path) -> Result<Decoded> {
    if path.as_os_str() == "-" {
        return decode::decode_reader(std::io::stdin().lock())
            .context("cannot read standard input");
    }
    let f =
        std::fs::File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    decode::decode_reader(f).with_context(|| format!("cannot read '{}'", path.display()))
}

/// Returns the exit code: 0 whether or not kills were found.
pub fn run(o: &Opts) -> Result<i32> {
    let ev = Eviction {
        hard: Some(o.eviction_hard),
        source: "--eviction-hard".into(),
        ..Default::default()
    };
    let mut d = decode_path(&o.file)?;
    judge_all(&mut d, &ev);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match write_all(&mut out, &d, o.format) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        r => r.context("cannot write output")?,
    }
    if o.format == Format::Json {
        eprintln!("{}", text::summary(&d));
    }
    Ok(0)
}

pub fn write_all(out: &mut impl Write, d: &Decoded, format: Format) -> std::io::Result<()> {
    match format {
        Format::Text => {
            for k in &d.kills {
                writeln!(out, "{}", text::kill_line(k))?;
            }
            for i in &d.incomplete {
                writeln!(
                    out,
                    "line {}: OOM report without a kill line ({}){}",
                    i.line,
                    i.reason,
                    i.trigger
                        .as_ref()
                        .map(|t| format!(", triggered by {t}"))
                        .unwrap_or_default()
                )?;
            }
            if d.kills.is_empty() && d.incomplete.is_empty() && d.stats.unparsed == 0 {
                writeln!(out, "no OOM kill found ({} lines read)", d.stats.lines)?;
            } else {
                writeln!(out, "{}", text::summary(d))?;
            }
        }
        Format::Json => {
            for k in &d.kills {
                serde_json::to_writer(&mut *out, k)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
