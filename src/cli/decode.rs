//! `oomwatch decode`: read a saved log, print one line (or JSON object) per kill.

use crate::decode::{self, Decoded};
use crate::text;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct Opts {
    /// Log file to read; `-` reads standard input
    pub file: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// One readable line per kill, then a summary
    Text,
    /// One JSON object per kill (NDJSON); the summary goes to stderr
    Json,
}

/// Read a whole input as text; invalid UTF-8 is replaced, not fatal.
pub fn read_input(path: &PathBuf) -> Result<String> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
    } else {
        buf = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Returns the exit code: 0 whether or not kills were found.
pub fn run(o: &Opts) -> Result<i32> {
    let input = read_input(&o.file)?;
    let d = decode::decode(&input);
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
