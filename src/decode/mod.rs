//! The OOM-kill decoder: kernel log text in, kill records out. Pure: no I/O.

pub mod kill;
pub mod messages;
pub mod prefix;
pub mod report;

pub use kill::{Candidate, Kill, MemInfo, PAGE_SIZE};
pub use report::{Decoder, Event, Incomplete, Stats};

use aho_corasick::{AhoCorasick, MatchKind};
use std::collections::HashSet;
use std::io::Read;
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

static ANCHOR_SEARCH: LazyLock<AhoCorasick> = LazyLock::new(|| {
    // Leftmost-first lets aho-corasick use its SIMD prefilter (~10x faster).
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(ANCHORS)
        .expect("static patterns")
});

/// All that a whole input decodes to.
#[derive(Debug, Default)]
pub struct Decoded {
    pub kills: Vec<Kill>,
    pub incomplete: Vec<Incomplete>,
    pub stats: Stats,
}

/// Decode a whole log held in memory.
pub fn decode(text: &str) -> Decoded {
    let mut b = Batch::default();
    b.push(text);
    b.finish()
}

/// Decode a log from a reader through a fixed buffer: memory stays flat
/// whatever the size of the log.
pub fn decode_reader(mut r: impl Read) -> std::io::Result<Decoded> {
    let mut b = Batch::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
        let n = match r.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        let end = if n == 0 {
            filled
        } else {
            memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1)
        };
        if end > 0 {
            match std::str::from_utf8(&buf[..end]) {
                Ok(s) => b.push(s),
                Err(_) => b.push(&String::from_utf8_lossy(&buf[..end])),
            }
            buf.copy_within(end..filled, 0);
            filled -= end;
        }
        if n == 0 {
            return Ok(b.finish());
        }
    }
}

/// The batch reader: jumps between anchors while no report is open, and
/// keeps kills once when a file holds the same kill twice (same pid and
/// kernel time, as when `dmesg` and journal output are pasted together).
#[derive(Default)]
struct Batch {
    dec: Decoder,
    out: Decoded,
    seen: HashSet<(u32, u64)>,
    /// Lines read so far.
    line_no: usize,
}

impl Batch {
    /// Whole lines (the last may lack its newline only at the end of input).
    fn push(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            if self.dec.is_idle() {
                let Some(m) = ANCHOR_SEARCH.find(&text[pos..]) else {
                    self.line_no += memchr::memchr_iter(b'\n', &bytes[pos..]).count()
                        + usize::from(!text.ends_with('\n'));
                    return;
                };
                let at = pos + m.start();
                let start = memchr::memrchr(b'\n', &bytes[pos..at]).map_or(pos, |i| pos + i + 1);
                self.line_no += memchr::memchr_iter(b'\n', &bytes[pos..start]).count();
                pos = start;
            }
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            self.line_no += 1;
            self.dec.feed(&text[pos..end], self.line_no);
            self.collect();
            pos = end + 1;
        }
    }

    fn finish(mut self) -> Decoded {
        self.dec.finish();
        self.collect();
        let dup = self.out.stats.duplicates;
        self.out.stats = self.dec.stats.clone();
        self.out.stats.duplicates += dup;
        self.out.stats.lines = self.line_no as u64;
        self.out.stats.kills = self.out.kills.len() as u64;
        self.out
    }

    fn collect(&mut self) {
        let out = &mut self.out;
        for ev in self.dec.drain() {
            match ev {
                Event::Kill(k) => {
                    if let Some(t) = k.kernel_time {
                        if !self.seen.insert((k.pid, t.to_bits())) {
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
}
