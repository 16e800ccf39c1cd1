//! Parsers for the kernel's OOM messages, one function per message kind.
//!
//! Each takes a message body (prefix already stripped) and returns a typed
//! value. Format strings differ from 3.10 to 6.x; every parser accepts all of
//! them and reads fields by name, so a truncated line still yields what it has.

use regex::Regex;
use std::sync::LazyLock;

/// One classified message.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Invoked(Trigger),
    /// Pre-4.19: `<comm> cpuset=<cg> mems_allowed=<nodes>`.
    Cpuset {
        comm: String,
        cpuset: String,
    },
    /// `memory: usage 65536kB, limit 65536kB, failcnt 0` (also memory+swap, kmem, swap).
    Usage {
        counter: String,
        usage_kb: u64,
        limit_kb: u64,
    },
    MemcgStats {
        path: String,
    },
    /// Pre-4.19 memcg header.
    TaskIn {
        task_memcg: String,
        oom_memcg: String,
    },
    MemInfo,
    TasksTitle,
    TaskHeader(Vec<String>),
    Summary(Summary),
    GroupKill {
        path: String,
    },
    /// Pre-5.1 `Kill process N (comm) score S or sacrifice child`.
    Select {
        global: Option<bool>,
        pid: u32,
        comm: String,
    },
    Killed(Killed),
    Reaped {
        pid: u32,
    },
    /// `Out of memory and no killable processes...`
    NoVictim,
    /// An OOM line cut before its first field: a wrapped tail may follow.
    Cut,
    /// Looked like an OOM line, but its fields could not be read.
    Unreadable,
    Other,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trigger {
    pub comm: String,
    pub gfp_mask: Option<String>,
    pub order: Option<i32>,
    pub oom_score_adj: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Summary {
    pub constraint: Option<String>,
    pub global: Option<bool>,
    pub oom_memcg: Option<String>,
    pub task_memcg: Option<String>,
    pub comm: Option<String>,
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    /// Ended with `uid=N`: nothing was cut off.
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Killed {
    /// From the message prefix: true for `Out of memory`, false for
    /// `Memory cgroup out of memory`, None when the line has no prefix.
    pub global: Option<bool>,
    pub pid: u32,
    pub comm: Option<String>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub uid: Option<u32>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i32>,
    /// Ended where some kernel's format ends.
    pub complete: bool,
}

/// Classify and parse one body. `Other` for everything that is not an OOM
/// message (most lines), decided with cheap substring tests first.
pub fn parse(body: &str) -> Msg {
    let b = body.trim_start();
    if b.contains("Killed process") {
        return killed(b).map_or(Msg::Cut, Msg::Killed);
    }
    if let Some(r) = b.strip_prefix("oom-kill:") {
        let s = summary(r);
        if s.constraint.is_none() && s.pid.is_none() && s.task_memcg.is_none() {
            return Msg::Cut;
        }
        return Msg::Summary(s);
    }
    if b.contains(" invoked oom-killer:") {
        return invoked(b).map_or(Msg::Cut, Msg::Invoked);
    }
    if b.starts_with("Mem-Info") {
        return Msg::MemInfo;
    }
    if b.starts_with("Tasks state") {
        return Msg::TasksTitle;
    }
    if b.starts_with("[ ") && b.contains("uid") && b.contains("tgid") {
        return Msg::TaskHeader(task_header(b));
    }
    if let Some(m) = b.contains(": usage ").then(|| USAGE.captures(b)).flatten() {
        return Msg::Usage {
            counter: m[1].to_string(),
            usage_kb: m[2].parse().unwrap_or(0),
            limit_kb: m[3].parse().unwrap_or(0),
        };
    }
    if let Some(r) = b.strip_prefix("Memory cgroup stats for ") {
        return Msg::MemcgStats {
            path: stats_path(r).to_string(),
        };
    }
    if let Some(m) = b
        .starts_with("Task in ")
        .then(|| TASK_IN.captures(b))
        .flatten()
    {
        return Msg::TaskIn {
            task_memcg: m[1].to_string(),
            oom_memcg: m[2].to_string(),
        };
    }
    if let Some(m) = b
        .starts_with("Tasks in ")
        .then(|| GROUP.captures(b))
        .flatten()
    {
        return Msg::GroupKill {
            path: m[1].to_string(),
        };
    }
    if let Some(m) = b
        .contains("ill process ")
        .then(|| SELECT.captures(b))
        .flatten()
    {
        return Msg::Select {
            global: m.get(1).map(|p| prefix_global(p.as_str())).unwrap_or(None),
            pid: m[2].parse().unwrap_or(0),
            comm: m[3].to_string(),
        };
    }
    if let Some(m) = b
        .starts_with("oom_reaper:")
        .then(|| REAPED.captures(b))
        .flatten()
    {
        if let Ok(pid) = m[1].parse() {
            return Msg::Reaped { pid };
        }
    }
    if b.starts_with("Out of memory and no killable processes") {
        return Msg::NoVictim;
    }
    if let Some(m) = b.contains(" cpuset=").then(|| CPUSET.captures(b)).flatten() {
        return Msg::Cpuset {
            comm: m[1].to_string(),
            cpuset: m[2].to_string(),
        };
    }
    Msg::Other
}

static INVOKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.*) invoked oom-killer:\s*(?:gfp_mask=(\S+?),\s*)?(?:nodemask=\S*?,\s*)?(?:order=(-?\d+))?(?:,\s*oom_adj=-?\d+)?(?:,\s*oom_score_adj=(-?\d+))?").unwrap()
});
static USAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(memory|memory\+swap|kmem|swap): usage (\d+)kB, limit (\d+)kB").unwrap()
});
static TASK_IN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Task in (\S*) killed as a result of limit of (\S*)").unwrap());
static GROUP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Tasks in (.*) are going to be killed due to memory\.oom\.group set").unwrap()
});
static SELECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(.*): )?[Kk]ill process (\d+) \((.*)\) score -?\d+ or (?:sacrifice child|a child)",
    )
    .unwrap()
});
static REAPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^oom_reaper: reaped process (\d+) ").unwrap());
static CPUSET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.*) cpuset=(\S*) mems_allowed=\S*$").unwrap());
static FIELD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([A-Za-z_-]+):\s*(-?\d+)").unwrap());

fn invoked(b: &str) -> Option<Trigger> {
    let m = INVOKED.captures(b)?;
    Some(Trigger {
        comm: m[1].to_string(),
        gfp_mask: m.get(2).map(|x| x.as_str().to_string()),
        order: m.get(3).and_then(|x| x.as_str().parse().ok()),
        oom_score_adj: m.get(4).and_then(|x| x.as_str().parse().ok()),
    })
}

/// Message prefix -> is this a global OOM?
fn prefix_global(prefix: &str) -> Option<bool> {
    let p = prefix.trim().trim_end_matches(':');
    if p.ends_with("Memory cgroup out of memory") {
        Some(false)
    } else if p.ends_with("Out of memory")
        || p.ends_with("Out of memory (oom_kill_allocating_task)")
    {
        Some(true)
    } else {
        None
    }
}

/// `[prefix: ]Killed process N (comm) total-vm:..kB, anon-rss:..kB, ...`
/// The comm may hold spaces and parentheses: it ends at the last `)` that
/// is followed by the first field.
pub fn killed(b: &str) -> Option<Killed> {
    let at = b.find("Killed process ")?;
    let mut k = Killed {
        global: prefix_global(&b[..at]),
        ..Default::default()
    };
    let rest = &b[at + "Killed process ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    k.pid = rest[..digits].parse().ok()?;
    let rest = rest[digits..].trim_start();
    let fields = match rest.strip_prefix('(') {
        Some(r) => {
            let end = ["total-vm:", "vsz:"]
                .iter()
                .filter_map(|f| r.rfind(f))
                .max()
                .and_then(|i| r[..i].trim_end().strip_suffix(')').map(|c| (c.len(), i)));
            match end {
                Some((clen, fi)) => {
                    k.comm = Some(r[..clen].to_string());
                    &r[fi..]
                }
                None => {
                    // Cut off inside or right after the comm.
                    k.comm = r.strip_suffix(')').map(str::to_string);
                    ""
                }
            }
        }
        None => rest,
    };
    let mut last = "";
    for m in FIELD.captures_iter(fields) {
        let v = &m[2];
        last = m.get(1).map_or("", |x| x.as_str());
        match last {
            "total-vm" | "vsz" => k.total_vm_kb = v.parse().ok(),
            "anon-rss" => k.anon_rss_kb = v.parse().ok(),
            "file-rss" => k.file_rss_kb = v.parse().ok(),
            "shmem-rss" => k.shmem_rss_kb = v.parse().ok(),
            "UID" => k.uid = v.parse().ok(),
            "pgtables" => k.pgtables_kb = v.parse().ok(),
            "oom_score_adj" => k.oom_score_adj = v.parse().ok(),
            _ => {}
        }
    }
    // Where the 3.x, 4.x and 5.x+ formats end.
    let f = fields.trim_end();
    k.complete = match last {
        "oom_score_adj" => ends_with_number(f),
        "file-rss" | "shmem-rss" => f.ends_with("kB"),
        _ => false,
    };
    Some(k)
}

fn ends_with_number(s: &str) -> bool {
    s.as_bytes().last().is_some_and(u8::is_ascii_digit)
}

/// `constraint=...,nodemask=...,cpuset=...,mems_allowed=...,{oom_memcg=P|global_oom},task_memcg=P,task=C,pid=N,uid=N`
///
/// Cgroup names, node lists and the comm can all hold commas, so fields are
/// cut at the next known key, and the tail is read from the right.
pub fn summary(r: &str) -> Summary {
    let mut s = Summary::default();
    let r = r.trim_end();
    s.constraint = value(
        r,
        "constraint=",
        &[
            ",nodemask=",
            ",cpuset=",
            ",mems_allowed=",
            ",global_oom",
            ",oom_memcg=",
            ",task_memcg=",
        ],
    )
    .map(|c| c.trim_start_matches("CONSTRAINT_").to_ascii_lowercase());
    if r.contains(",global_oom") {
        s.global = Some(true);
    }
    s.oom_memcg = value(r, ",oom_memcg=", &[",task_memcg="]).map(str::to_string);
    if s.oom_memcg.is_some() {
        s.global = Some(false);
    }
    if s.global.is_none() {
        s.global = s.constraint.as_deref().map(|c| c != "memcg");
    }
    // Tail: `,task=<comm>,pid=N,uid=N`, the comm at most 15 bytes (escaped: more).
    let tail = TAIL.captures(r);
    let task_end = match &tail {
        Some(m) => {
            s.comm = Some(m[1].to_string());
            s.pid = m[2].parse().ok();
            s.uid = m.get(3).and_then(|u| u.as_str().parse().ok());
            s.complete = m.get(3).is_some();
            m.get(0).map_or(r.len(), |x| x.start())
        }
        None => r.len(),
    };
    if let Some(i) = r.find(",task_memcg=") {
        let from = i + ",task_memcg=".len();
        if from <= task_end {
            s.task_memcg = Some(r[from..task_end].to_string());
        }
    }
    s
}

static TAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r",task=(.{0,64}?),pid=(\d+)(?:,uid=(\d+))?$").unwrap());

/// The text after `key` up to the first of `stops`, or to the end.
fn value<'a>(s: &'a str, key: &str, stops: &[&str]) -> Option<&'a str> {
    let from = s.find(key)? + key.len();
    let rest = &s[from..];
    let end = stops
        .iter()
        .filter_map(|st| rest.find(st))
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// `Memory cgroup stats for /a/b:` (new) or `... /a/b: cache:0KB rss:...` (old).
/// The path may hold `:` (the `slice:cri-containerd:<id>` form).
fn stats_path(r: &str) -> &str {
    static OLD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^(.*?):(?:\s+[a-z_]+:\d+KB)+\s*$").unwrap());
    if let Some(m) = OLD.captures(r) {
        return m.get(1).map_or(r, |x| x.as_str());
    }
    r.trim_end().strip_suffix(':').unwrap_or(r.trim_end())
}

fn task_header(b: &str) -> Vec<String> {
    let after = b.find(']').map_or(b, |i| &b[i + 1..]);
    after.split_whitespace().map(str::to_string).collect()
}

/// One task table row, read with the header's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub pid: u32,
    pub uid: Option<u32>,
    pub rss_pages: Option<u64>,
    pub oom_score_adj: Option<i32>,
    pub comm: String,
}

/// `[  11731]     0 11731    16696    16387 ... hog`; `columns` excludes pid.
/// The name is the rest of the line: it may hold spaces.
pub fn task_row(b: &str, columns: &[String]) -> Option<TaskRow> {
    let b = b.trim_start().strip_prefix('[')?;
    let close = b.find(']')?;
    let pid: u32 = b[..close].trim().parse().ok()?;
    let mut rest = &b[close + 1..];
    let numeric = columns.len().saturating_sub(1);
    let mut row = TaskRow {
        pid,
        uid: None,
        rss_pages: None,
        oom_score_adj: None,
        comm: String::new(),
    };
    for col in columns.iter().take(numeric) {
        let t = rest.trim_start();
        let n = t
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'-')
            .count();
        if n == 0 {
            return None;
        }
        let v = &t[..n];
        match col.as_str() {
            "uid" => row.uid = v.parse().ok(),
            "rss" => row.rss_pages = v.parse().ok(),
            "oom_score_adj" => row.oom_score_adj = v.parse().ok(),
            _ => {}
        }
        rest = &t[n..];
    }
    row.comm = rest
        .strip_prefix(' ')
        .unwrap_or(rest)
        .trim_start()
        .to_string();
    Some(row)
}

/// `key:value` page counts of the Mem-Info block (values with units skipped).
pub fn meminfo_pairs(b: &str) -> impl Iterator<Item = (&str, u64)> {
    b.split_whitespace().filter_map(|t| {
        let (k, v) = t.split_once(':')?;
        Some((k, v.parse().ok()?))
    })
}

/// `2098035 pages RAM`, `60476 pages reserved`
pub fn pages_line(b: &str) -> Option<(&str, u64)> {
    let (n, rest) = b.trim().split_once(" pages ")?;
    Some((rest, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoked_all_eras() {
        let t =
            invoked("hog invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0")
                .unwrap();
        assert_eq!(
            (
                t.comm.as_str(),
                t.gfp_mask.as_deref(),
                t.order,
                t.oom_score_adj
            ),
            ("hog", Some("0xcc0(GFP_KERNEL)"), Some(0), Some(0))
        );
        let t = invoked("java invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), nodemask=(null), order=0, oom_score_adj=-998").unwrap();
        assert_eq!((t.order, t.oom_score_adj), (Some(0), Some(-998)));
        let t = invoked(
            "my (weird) app invoked oom-killer: gfp_mask=0xd0, order=2, oom_adj=0, oom_score_adj=0",
        )
        .unwrap();
        assert_eq!((t.comm.as_str(), t.order), ("my (weird) app", Some(2)));
    }

    #[test]
    fn killed_all_eras() {
        let k = killed("Out of memory: Killed process 13623 (ld-musl-x86_64.) total-vm:1024980kB, anon-rss:1023856kB, file-rss:4kB, shmem-rss:0kB, UID:65534 pgtables:2052kB oom_score_adj:1000").unwrap();
        assert_eq!(
            (k.global, k.pid, k.comm.as_deref()),
            (Some(true), 13623, Some("ld-musl-x86_64."))
        );
        assert_eq!(
            (
                k.anon_rss_kb,
                k.uid,
                k.pgtables_kb,
                k.oom_score_adj,
                k.complete
            ),
            (Some(1023856), Some(65534), Some(2052), Some(1000), true)
        );
        let k = killed(
            "Killed process 1234 (java) total-vm:2315012kB, anon-rss:1075308kB, file-rss:0kB",
        )
        .unwrap();
        assert_eq!(
            (k.global, k.anon_rss_kb, k.shmem_rss_kb, k.complete),
            (None, Some(1075308), None, true)
        );
        let k = killed("Killed process 1234 (java) total-vm:2315012kB, anon-rss:1075308kB, file-rss:0kB, shmem-rss:0kB").unwrap();
        assert!(k.complete);
        let k = killed("Memory cgroup out of memory: Killed process 7 (a) b, (c)) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB, UID:0 pgtables:5kB oom_score_adj:-997").unwrap();
        assert_eq!(
            (k.global, k.comm.as_deref(), k.oom_score_adj),
            (Some(false), Some("a) b, (c)"), Some(-997))
        );
        let k = killed("Out of memory (oom_kill_allocating_task): Killed process 9 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB").unwrap();
        assert_eq!(k.global, Some(true));
        let k = killed("Killed process 9 (x) vsz:1kB, anon-rss:2kB, file-rss:3kB").unwrap();
        assert_eq!(k.total_vm_kb, Some(1));
    }

    #[test]
    fn killed_truncated() {
        let k = killed("Out of memory: Killed process 13623 (ld-musl-x86_64.) total-vm:1024980kB, anon-rss:10238").unwrap();
        assert_eq!(
            (k.pid, k.anon_rss_kb, k.complete),
            (13623, Some(10238), false)
        );
        let k = killed("Out of memory: Killed process 13623 (ld-mu").unwrap();
        assert_eq!((k.pid, k.comm, k.complete), (13623, None, false));
        assert!(killed("Out of memory: Killed process ").is_none());
    }

    #[test]
    fn summary_from_the_right() {
        let s = summary("constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/containerd.service/kubepods-besteffort-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice:cri-containerd:b5c9,task=ld-musl-x86_64.,pid=13623,uid=65534");
        assert_eq!(
            (s.constraint.as_deref(), s.global, s.oom_memcg.as_deref()),
            (Some("none"), Some(true), None)
        );
        assert_eq!(s.task_memcg.as_deref(), Some("/system.slice/containerd.service/kubepods-besteffort-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice:cri-containerd:b5c9"));
        assert_eq!(
            (s.comm.as_deref(), s.pid, s.uid, s.complete),
            (Some("ld-musl-x86_64."), Some(13623), Some(65534), true)
        );
        let s = summary("constraint=CONSTRAINT_MEMCG,nodemask=0-1,3,cpuset=a,b,mems_allowed=0-1,oom_memcg=/x,y,task_memcg=/x,y/z,task=a,task=b,pid=5,uid=0");
        assert_eq!(
            (s.constraint.as_deref(), s.global),
            (Some("memcg"), Some(false))
        );
        assert_eq!(
            (
                s.oom_memcg.as_deref(),
                s.task_memcg.as_deref(),
                s.comm.as_deref()
            ),
            (Some("/x,y"), Some("/x,y/z"), Some("a,task=b"))
        );
        let s = summary("constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/burstable/pod1/ctr1,task_memcg=/kubepods/burstable/pod1/ctr1,tas");
        assert!(!s.complete);
        assert_eq!(
            s.task_memcg.as_deref(),
            Some("/kubepods/burstable/pod1/ctr1,tas")
        );
        let s = summary("constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=x,mems_allowed=0,task_memcg=/,task=a,pid=1,uid=0");
        assert_eq!(
            (s.constraint.as_deref(), s.global),
            (Some("cpuset"), Some(true))
        );
    }

    #[test]
    fn task_rows() {
        let cols = task_header("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name");
        assert_eq!(cols.len(), 11);
        let r = task_row("[  11731]     0 11731    16696    16387    16288       99         0   172032        0             0 hog", &cols).unwrap();
        assert_eq!(
            (r.pid, r.uid, r.rss_pages, r.oom_score_adj, r.comm.as_str()),
            (11731, Some(0), Some(16387), Some(0), "hog")
        );
        let cols = task_header(
            "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",
        );
        let r = task_row(
            "[ 5378]  1000  5378    42443      953      98        0          -997 (sd pam) x",
            &cols,
        )
        .unwrap();
        assert_eq!(
            (r.oom_score_adj, r.comm.as_str()),
            (Some(-997), "(sd pam) x")
        );
        assert!(task_row("[  pid  ]", &cols).is_none());
    }

    #[test]
    fn other_messages() {
        assert_eq!(
            parse("Memory cgroup stats for /kubepods/x:"),
            Msg::MemcgStats {
                path: "/kubepods/x".into()
            }
        );
        assert_eq!(
            parse("Memory cgroup stats for /a.slice:cri-containerd:ab: cache:0KB rss:12KB"),
            Msg::MemcgStats {
                path: "/a.slice:cri-containerd:ab".into()
            }
        );
        assert_eq!(
            parse("Task in /kubepods/a/b killed as a result of limit of /kubepods/a"),
            Msg::TaskIn {
                task_memcg: "/kubepods/a/b".into(),
                oom_memcg: "/kubepods/a".into()
            }
        );
        assert_eq!(
            parse("Tasks in /kubepods/p are going to be killed due to memory.oom.group set"),
            Msg::GroupKill {
                path: "/kubepods/p".into()
            }
        );
        assert_eq!(
            parse(
                "Memory cgroup out of memory: Kill process 5 (a b) score 1000 or sacrifice child"
            ),
            Msg::Select {
                global: Some(false),
                pid: 5,
                comm: "a b".into()
            }
        );
        assert_eq!(parse("oom_reaper: reaped process 13623 (ld-musl-x86_64.), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"), Msg::Reaped { pid: 13623 });
        assert_eq!(
            parse("java cpuset=/ mems_allowed=0"),
            Msg::Cpuset {
                comm: "java".into(),
                cpuset: "/".into()
            }
        );
        assert_eq!(
            parse("memory: usage 65536kB, limit 65536kB, failcnt 0"),
            Msg::Usage {
                counter: "memory".into(),
                usage_kb: 65536,
                limit_kb: 65536
            }
        );
        assert_eq!(parse("Mem-Info:"), Msg::MemInfo);
        assert_eq!(parse("eth0: link up"), Msg::Other);
    }
}
