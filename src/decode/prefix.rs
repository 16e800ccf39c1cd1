//! Strip what a log format puts before the kernel's message text.
//!
//! One physical line in; the message body and what the prefix said out.
//! Formats are detected per line, so mixed and pasted files work:
//! raw `/dev/kmsg` records, `dmesg` (plain, `-T`, `-H`, `-x`, `-r`),
//! journalctl / syslog (BSD and ISO stamps) and bare lines, with paste
//! decorations (`> ` quotes, bullets, backticks) removed first.

/// Where a line came from, as far as its prefix tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `PRI,SEQ,USEC,FLAGS;text`: one whole record, never wrapped.
    Kmsg,
    /// A timestamped line (dmesg or syslog).
    Stamped,
    /// No prefix: a bare message, or a wrapped continuation.
    Bare,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prefixed<'a> {
    pub body: &'a str,
    pub source: Source,
    /// False for syslog lines of other programs and for user-space records
    /// written into the kernel ring (facility not `kern`).
    pub kernel: bool,
    /// Seconds since boot.
    pub kernel_time: Option<f64>,
    /// RFC 3339 when the stamp has a year and zone; ISO 8601 without a zone
    /// when it has a year but no zone (`dmesg -T`).
    pub wall_time: Option<String>,
    /// The stamp as written, for display when nothing better exists.
    pub stamp: Option<&'a str>,
    pub seq: Option<u64>,
}

impl<'a> Prefixed<'a> {
    fn bare(body: &'a str) -> Self {
        Prefixed {
            body,
            source: Source::Bare,
            kernel: true,
            kernel_time: None,
            wall_time: None,
            stamp: None,
            seq: None,
        }
    }
}

/// Split one physical line.
pub fn split(line: &str) -> Prefixed<'_> {
    let raw = strip_decoration(line.trim_end_matches(['\r', '\n']));
    let line = raw.trim_start();
    if let Some(p) = kmsg(line) {
        return p;
    }
    let mut p = Prefixed::bare(raw);
    let mut rest = line;
    // `dmesg -r`: <level> before the stamp.
    if let Some(r) = strip_priority(rest) {
        rest = r;
        p.source = Source::Stamped;
    }
    // `dmesg -x`: facility and level, before or after the stamp.
    if let Some((kern, r)) = facility_level(rest) {
        p.kernel &= kern;
        p.source = Source::Stamped;
        rest = r;
    }
    if let Some((stamp, r)) = bracket(rest) {
        apply_bracket(&mut p, stamp);
        p.source = Source::Stamped;
        rest = r;
        if let Some((kern, r)) = facility_level(rest) {
            p.kernel &= kern;
            rest = r;
        }
        // journalctl -o short-monotonic: `[  1.2] host kernel: msg`
        if let Some((kern, r)) = host_tag(rest) {
            p.kernel &= kern;
            rest = r;
        }
    } else if let Some((stamp, wall, r)) = syslog_stamp(rest) {
        p.source = Source::Stamped;
        p.stamp = Some(stamp);
        p.wall_time = wall;
        rest = r;
        match host_tag(rest) {
            Some((kern, r)) => {
                p.kernel &= kern;
                rest = r;
            }
            None => p.kernel = false,
        }
        // `kernel: [  123.456] msg`
        if let Some((stamp, r)) = bracket(rest) {
            if let Some(t) = kernel_seconds(stamp) {
                p.kernel_time = Some(t);
                rest = r;
            }
        }
    }
    p.body = if p.source == Source::Bare { raw } else { rest }.trim_end_matches('`');
    p
}

/// Paste decorations: `> ` quoting, bullets, backticks. Leading spaces
/// after them are kept: in a wrapped line they are part of the text.
fn strip_decoration(mut s: &str) -> &str {
    loop {
        let t = s.trim_start_matches([' ', '\t']);
        s = if let Some(r) = t.strip_prefix('>') {
            r.strip_prefix(' ').unwrap_or(r)
        } else if let Some(r) = t.strip_prefix("```") {
            r
        } else if let Some(r) = t.strip_prefix('`') {
            r
        } else if let Some(r) = t
            .strip_prefix("- ")
            .or_else(|| t.strip_prefix("* "))
            .or_else(|| t.strip_prefix("\u{2022} "))
        {
            r
        } else {
            return s;
        };
    }
}

/// `PRI,SEQ,USEC,FLAGS[,...];text`
fn kmsg(line: &str) -> Option<Prefixed<'_>> {
    let b = line.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    let semi = memchr::memchr(b';', &b[..b.len().min(96)])?;
    let mut f = line[..semi].split(',');
    let pri: u32 = f.next()?.parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    let usec: u64 = f.next()?.parse().ok()?;
    let _flags = f.next()?;
    Some(Prefixed {
        body: &line[semi + 1..],
        source: Source::Kmsg,
        kernel: pri < 8,
        kernel_time: Some(usec as f64 / 1e6),
        wall_time: None,
        stamp: None,
        seq: Some(seq),
    })
}

fn strip_priority(s: &str) -> Option<&str> {
    let r = s.strip_prefix('<')?;
    let end = r.find('>')?;
    (end > 0 && end <= 3 && r[..end].bytes().all(|c| c.is_ascii_digit())).then(|| &r[end + 1..])
}

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `kern  :err   : ` -> (is kernel, rest)
fn facility_level(s: &str) -> Option<(bool, &str)> {
    let (fac, r) = s.split_once(':')?;
    let fac = fac.trim_end();
    if !FACILITIES.contains(&fac) {
        return None;
    }
    let (lvl, r) = r.split_once(':')?;
    if !LEVELS.contains(&lvl.trim_end()) {
        return None;
    }
    Some((fac == "kern", r.strip_prefix(' ').unwrap_or(r)))
}

/// `[...] ` at the start, when the inside looks like a time.
fn bracket(s: &str) -> Option<(&str, &str)> {
    let r = s.strip_prefix('[')?;
    let end = r.as_bytes().iter().take(40).position(|&c| c == b']')?;
    let inner = &r[..end];
    let t = inner.trim();
    let looks_like_time = t.contains('.')
        && t.bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'+')
        || t.contains(':') && t.bytes().any(|c| c.is_ascii_alphabetic());
    if !looks_like_time {
        return None;
    }
    let rest = &r[end + 1..];
    Some((inner, rest.strip_prefix(' ').unwrap_or(rest)))
}

fn kernel_seconds(stamp: &str) -> Option<f64> {
    let t = stamp.trim();
    if t.starts_with('+') || !t.contains('.') {
        return None;
    }
    t.parse().ok()
}

fn apply_bracket<'a>(p: &mut Prefixed<'a>, stamp: &'a str) {
    if let Some(t) = kernel_seconds(stamp) {
        p.kernel_time = Some(t);
        return;
    }
    if stamp.trim().starts_with('+') {
        return; // `dmesg -H` delta: no time of its own
    }
    p.stamp = Some(stamp.trim());
    // `dmesg -T`: `Sun Oct 27 15:55:54 2024`
    p.wall_time = ctime(stamp.trim());
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

/// `Sun Oct 27 15:55:54 2024` -> `2024-10-27T15:55:54` (no zone: dmesg -T prints local time)
fn ctime(s: &str) -> Option<String> {
    let mut it = s.split_whitespace();
    let _wday = it.next()?;
    let mon = month(it.next()?)?;
    let day: u32 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    let year: u32 = it.next()?.parse().ok()?;
    valid_hms(hms).then(|| format!("{year:04}-{mon:02}-{day:02}T{hms}"))
}

fn valid_hms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[2] == b':'
        && b[5] == b':'
        && b[..8]
            .iter()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

/// Syslog stamps: `Oct 27 15:55:54[.123] ` and ISO `2024-10-27T15:55:54[.123][Z|+09:00] `.
/// Returns (stamp text, wall time when it has a year, rest).
fn syslog_stamp(s: &str) -> Option<(&str, Option<String>, &str)> {
    let b = s.as_bytes();
    if b.len() > 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T' {
        let end = s.find(' ')?;
        let stamp = &s[..end];
        return Some((stamp, iso(stamp), &s[end + 1..]));
    }
    if b.len() > 16 && month(s.get(..3)?).is_some() && b[3] == b' ' {
        // `Oct 27 15:55:54` or `Oct  7 15:55:54`, optional fraction.
        let day = s.get(4..6)?.trim_start();
        if !day.bytes().all(|c| c.is_ascii_digit()) || !valid_hms(s.get(7..)?) {
            return None;
        }
        let end = 7 + s[7..].find(' ')?;
        return Some((&s[..end], None, &s[end + 1..]));
    }
    None
}

/// ISO stamps with a zone are RFC 3339 already; normalise `+0900` to `+09:00`.
fn iso(stamp: &str) -> Option<String> {
    if !valid_hms(stamp.get(11..)?) {
        return None;
    }
    let tail = &stamp[19..];
    let zone_at = tail.find(['Z', '+', '-']).map(|i| 19 + i);
    match zone_at {
        Some(i) if &stamp[i..] == "Z" => Some(stamp.to_string()),
        Some(i) => {
            let z = &stamp[i + 1..];
            let z = if z.len() == 4 && !z.contains(':') {
                format!("{}:{}", &z[..2], &z[2..])
            } else {
                z.to_string()
            };
            Some(format!("{}{}{}", &stamp[..i], &stamp[i..i + 1], z))
        }
        None => Some(stamp.to_string()),
    }
}

/// `host kernel: ` -> (true, rest); `host prog[12]: ` -> (false, rest).
fn host_tag(s: &str) -> Option<(bool, &str)> {
    let sp = s.find(' ')?;
    let host = &s[..sp];
    if host.is_empty() || host.ends_with(':') {
        return None;
    }
    let r = &s[sp + 1..];
    let colon = r
        .find(": ")
        .or_else(|| r.strip_suffix(':').map(|x| x.len()))?;
    let tag = &r[..colon];
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let rest = r.get(colon + 2..).unwrap_or("");
    Some((tag == "kernel", rest))
}

/// Lines that carry several kernel lines in one: kmsg escapes (`\x0a`)
/// and rsyslog's control-character escapes (`#012`).
pub fn sub_lines(body: &str) -> impl Iterator<Item = &str> {
    let sep = if body.contains("\\x0a") {
        "\\x0a"
    } else if body.contains("#012") {
        "#012"
    } else {
        "\n"
    };
    body.split(sep)
}

/// Undo kmsg's `\xNN` escaping of other bytes (only when present).
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains("\\x") {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_kmsg() {
        let p = split("3,908,505092223,-;Memory cgroup out of memory: Killed process 11731 (hog)");
        assert_eq!(p.source, Source::Kmsg);
        assert_eq!(p.seq, Some(908));
        assert_eq!(p.kernel_time, Some(505.092223));
        assert!(p.body.starts_with("Memory cgroup"));
        assert!(!split("14,5,6,-;user message").kernel);
        let p = split("6,1234,99,-,caller=T12;msg");
        assert_eq!(p.body, "msg");
    }

    #[test]
    fn dmesg_variants() {
        let p = split("[15088.559321] Out of memory: Killed");
        assert_eq!(
            (p.kernel_time, p.body),
            (Some(15088.559321), "Out of memory: Killed")
        );
        let p = split("[Sun Oct 27 15:55:54 2024] Out of memory");
        assert_eq!(p.wall_time.as_deref(), Some("2024-10-27T15:55:54"));
        assert_eq!(p.body, "Out of memory");
        let p = split("kern  :err   : [  123.456789] Out of memory");
        assert_eq!(
            (p.kernel_time, p.body, p.kernel),
            (Some(123.456789), "Out of memory", true)
        );
        let p = split("user  :notice: [  123.456789] Killed process 1 (x)");
        assert!(!p.kernel);
        let p = split("[  +0.000123] Out of memory");
        assert_eq!((p.kernel_time, p.body), (None, "Out of memory"));
        let p = split("[Oct27 15:55] Out of memory");
        assert_eq!(p.body, "Out of memory");
        let p = split("<3>[  12.5] Out of memory");
        assert_eq!((p.kernel_time, p.body), (Some(12.5), "Out of memory"));
    }

    #[test]
    fn task_rows_are_not_stamps() {
        let p = split("[  11731]     0 11731    16696 hog");
        assert_eq!(p.source, Source::Bare);
        assert_eq!(p.body, "[  11731]     0 11731    16696 hog");
        let p = split("[15088.559250] [  pid  ]   uid  tgid total_vm");
        assert_eq!(p.body, "[  pid  ]   uid  tgid total_vm");
    }

    #[test]
    fn syslog_and_journal() {
        let p = split("Oct 27 15:55:54 node2 kernel: Out of memory: Killed process 1 (a)");
        assert_eq!(
            (p.kernel, p.body, p.stamp),
            (
                true,
                "Out of memory: Killed process 1 (a)",
                Some("Oct 27 15:55:54")
            )
        );
        let p = split("Oct  7 15:55:54 node2 kernel: [15088.559321] Out of memory");
        assert_eq!(
            (p.kernel_time, p.body),
            (Some(15088.559321), "Out of memory")
        );
        let p = split("Oct 27 15:55:54 node2 containerd[738]: Killed process 1 (a)");
        assert!(!p.kernel);
        let p = split("2024-10-27T15:55:54.123456+0900 node2 kernel: Out of memory");
        assert_eq!(
            p.wall_time.as_deref(),
            Some("2024-10-27T15:55:54.123456+09:00")
        );
        let p = split("2024-10-27T06:55:54Z node2 kernel: x");
        assert_eq!(
            (p.wall_time.as_deref(), p.body),
            (Some("2024-10-27T06:55:54Z"), "x")
        );
        let p = split("[15088.559321] node2 kernel: Out of memory");
        assert_eq!(
            (p.kernel_time, p.body),
            (Some(15088.559321), "Out of memory")
        );
    }

    #[test]
    fn paste_decorations() {
        assert_eq!(split("> [1.5] Out of memory").body, "Out of memory");
        assert_eq!(split(">> > - `[1.5] Out of memory`").body, "Out of memory");
        assert_eq!(split("* Out of memory").body, "Out of memory");
        assert_eq!(split("      active_file:34").body, "      active_file:34");
        assert_eq!(split(">  (app), v2)").body, " (app), v2)");
    }

    #[test]
    fn escapes() {
        let v: Vec<_> = sub_lines("Mem-Info:#012 active_file:3").collect();
        assert_eq!(v, ["Mem-Info:", " active_file:3"]);
        let v: Vec<_> = sub_lines("a\\x0a b").collect();
        assert_eq!(v, ["a", " b"]);
        assert_eq!(unescape("a\\x28b\\x29 \\x"), "a(b) \\x");
    }

    #[test]
    fn hostile_lines_do_not_panic() {
        for l in [
            "[",
            "]",
            "[.",
            "<",
            "<1",
            "9;",
            "1,2,3;",
            "Oct",
            "Oct 2",
            "2024-10-27T",
            "kern:",
            "kern  :err",
            "\u{e9}[1.0]\u{e9}",
            "Jan 01 00:00:0\u{e9}x host kernel: y",
            "2024-10-27T15:55:5\u{e9}Z h kernel: x",
            "[Sun Oct 27 1\u{e9}:55:54 2024] x",
        ] {
            let _ = split(l);
        }
    }
}
