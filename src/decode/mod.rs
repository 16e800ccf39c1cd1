//! The OOM-kill decoder: kernel log text in, kill records out. Pure: no I/O.

pub mod kill;
pub mod messages;
pub mod prefix;
pub mod report;

pub use kill::{Candidate, Kill, MemInfo};
pub use report::{Decoder, Event, Incomplete, Stats};

use aho_corasick::AhoCorasick;
use std::collections::HashSet;
use std::sync::LazyLock;

/// Every line that can matter while no report is open holds one of these.
/// Between reports the batch reader jumps from anchor to anchor.
pub const ANCHORS: &[&str] = &[
    "invoked oom-killer",
    "Killed process",
    "ill process",
    "oom-kill:",
    "Mem-Info",
    "Tasks state",
    "uid  tgid",
    "Task in ",
    "Tasks in ",
    "oom_reaper:",
    "Memory cgroup stats for",
    "memory: usage",
    "mems_allowed=",
    "Out of memory",
];

static ANCHOR_SEARCH: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(ANCHORS).expect("static patterns"));

/// All that a whole input decodes to.
#[derive(Debug, Default)]
pub struct Decoded {
    pub kills: Vec<Kill>,
    pub incomplete: Vec<Incomplete>,
    pub stats: Stats,
}

/// Decode a whole log. Kills seen twice (same pid and kernel time, as when a
/// file holds both `dmesg` and journal output) are kept once.
pub fn decode(text: &str) -> Decoded {
    let mut dec = Decoder::new();
    let mut out = Decoded::default();
    let mut seen = HashSet::new();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut line_no = 1;
    while pos < bytes.len() {
        if dec.is_idle() {
            let Some(m) = ANCHOR_SEARCH.find(&text[pos..]) else {
                line_no += memchr::memchr_iter(b'\n', &bytes[pos..]).count();
                break;
            };
            let at = pos + m.start();
            let start = memchr::memrchr(b'\n', &bytes[pos..at]).map_or(pos, |i| pos + i + 1);
            line_no += memchr::memchr_iter(b'\n', &bytes[pos..start]).count();
            pos = start;
        }
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        dec.feed(&text[pos..end], line_no);
        collect(&mut dec, &mut out, &mut seen);
        pos = end + 1;
        line_no += 1;
    }
    dec.finish();
    collect(&mut dec, &mut out, &mut seen);
    let dup = out.stats.duplicates;
    out.stats = dec.stats.clone();
    out.stats.duplicates += dup;
    out.stats.lines =
        line_no.saturating_sub(1) as u64 + u64::from(!text.is_empty() && !text.ends_with('\n'));
    out.stats.kills = out.kills.len() as u64;
    out
}

fn collect(dec: &mut Decoder, out: &mut Decoded, seen: &mut HashSet<(u32, u64)>) {
    for ev in dec.drain() {
        match ev {
            Event::Kill(k) => {
                if let Some(t) = k.kernel_time {
                    if !seen.insert((k.pid, t.to_bits())) {
                        out.stats.duplicates += 1;
                        continue;
                    }
                }
                out.kills.push(*k);
            }
            Event::Reaped { pid } => {
                if let Some(k) = out.kills.iter_mut().rev().take(64).find(|k| k.pid == pid) {
                    k.reaped = true;
                }
            }
            Event::Incomplete(i) => out.incomplete.push(i),
            Event::Group { pid } => {
                if let Some(k) = out.kills.iter_mut().rev().take(1).find(|k| k.pid == pid) {
                    k.group_kill = true;
                }
            }
        }
    }
}
