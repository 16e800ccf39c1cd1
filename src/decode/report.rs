//! The streaming decoder: feed lines, get kill records.
//!
//! The kernel prints one OOM report as many lines (header, Mem-Info or memcg
//! stats, task table, summary, `Killed process`). This state machine gathers
//! them into a `Report` and emits a `Kill` at each `Killed process` line, so
//! a kill is reported as soon as its line arrives. Lines of other programs may
//! sit between report lines; report starts may be lost; a bare `Killed
//! process` line (rate-limited burst) is still a kill.

use super::kill::{Candidate, Kill, MemInfo, PAGE_SIZE};
use super::messages::{self, Msg, Summary, TaskRow, Trigger};
use super::prefix::{self, Prefixed, Source};
use crate::podref::{self, Scope};

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Kill(Box<Kill>),
    /// The oom_reaper freed a victim's memory: belongs to an earlier kill.
    Reaped {
        pid: u32,
    },
    /// A report that ended without a `Killed process` line.
    Incomplete(Incomplete),
    /// The kill of `pid` turned out to start a group kill: kernels print the
    /// `memory.oom.group` notice after the first victim's line.
    Group {
        pid: u32,
    },
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Incomplete {
    pub line: usize,
    pub kernel_time: Option<f64>,
    pub trigger: Option<String>,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub lines: u64,
    pub kills: u64,
    pub incomplete: u64,
    /// OOM lines that could not be read (no pid, malformed).
    pub unparsed: u64,
    /// Kills seen twice (same pid and time), e.g. dmesg and journal in one file.
    pub duplicates: u64,
}

/// Where a line sits in the input.
#[derive(Clone, Debug, Default)]
struct Meta {
    line: usize,
    kernel_time: Option<f64>,
    wall_time: Option<String>,
    stamp: Option<String>,
    seq: Option<u64>,
    source: Option<Source>,
}

impl Meta {
    fn from(p: &Prefixed<'_>, line: usize) -> Self {
        Meta {
            line,
            kernel_time: p.kernel_time,
            wall_time: p.wall_time.clone(),
            stamp: p.stamp.map(str::to_string),
            seq: p.seq,
            source: Some(p.source),
        }
    }
}

/// A structured line that looked cut off, kept to join a wrapped tail.
struct Pending {
    text: String,
    meta: Meta,
    joins: u8,
}

#[derive(Default)]
struct Report {
    start_line: usize,
    start_time: Option<f64>,
    trigger: Option<Trigger>,
    summary: Option<Summary>,
    task_in: Option<(String, String)>,
    stats_path: Option<String>,
    usage_kb: Option<(u64, u64)>,
    /// Printed only for memcg OOMs.
    memcg_evident: bool,
    /// Mem-Info is printed only for global OOMs.
    global_evident: bool,
    /// Some line only an OOM report prints (Mem-Info alone is also SysRq's).
    oom_evident: bool,
    columns: Vec<String>,
    rows: Vec<TaskRow>,
    group: Option<String>,
    select: Option<(Option<bool>, u32)>,
    mem_info: Option<MemInfo>,
    in_meminfo: bool,
    killed: Vec<u32>,
    /// Consecutive lines that said nothing to the report.
    idle_lines: u32,
}

/// A report that heard nothing for this many lines is over.
const STALE_LINES: u32 = 500;
/// A 330-byte summary line wrapped at 60 columns is 6 lines.
const MAX_JOINS: u8 = 12;

#[derive(Default)]
pub struct Decoder {
    report: Option<Report>,
    pending: Option<Pending>,
    /// A plain line inside a report, held one line in case a wrap split an
    /// OOM message's own words (`...: K` / `illed process 7103 ...`).
    held: Option<Pending>,
    pub stats: Stats,
    events: Vec<Event>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when only anchor lines (see `decode::ANCHORS`) can matter, so a
    /// batch reader may skip ahead to the next one.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
            && self
                .report
                .as_ref()
                .is_none_or(|r| !r.killed.is_empty() && !r.in_meminfo)
    }

    /// Events produced so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Feed one physical line (any supported format), 1-based line number.
    pub fn feed(&mut self, raw: &str, line: usize) {
        self.stats.lines += 1;
        let p = prefix::split(raw);
        if !p.kernel {
            self.flush_pending();
            return;
        }
        let meta = Meta::from(&p, line);
        for sub in prefix::sub_lines(p.body) {
            let sub = prefix::unescape(sub);
            self.feed_body(&sub, &meta);
        }
    }

    /// Feed one `/dev/kmsg` record as rmesg parsed it: no prefix to detect.
    /// `kernel` is false for records user space wrote into the ring.
    pub fn feed_kmsg(&mut self, seq: u64, usec: u64, kernel: bool, text: &str) {
        self.stats.lines += 1;
        if !kernel {
            return;
        }
        let meta = Meta {
            line: self.stats.lines as usize,
            kernel_time: Some(usec as f64 / 1e6),
            seq: Some(seq),
            source: Some(Source::Kmsg),
            ..Default::default()
        };
        for sub in prefix::sub_lines(text) {
            let sub = prefix::unescape(sub);
            self.feed_body(&sub, &meta);
        }
    }

    /// End of input: close what is open.
    pub fn finish(&mut self) {
        self.flush_pending();
        self.close_report("input ended before the kill line");
    }

    fn feed_body(&mut self, body: &str, meta: &Meta) {
        let bare_tail = meta.source == Some(Source::Bare) && !body.trim().is_empty();
        if let Some(mut pend) = self.pending.take() {
            if bare_tail && is_wrapped_tail(body) {
                pend.text.push_str(body);
                pend.joins += 1;
                let msg = messages::parse(&pend.text);
                if looks_cut(&msg) && pend.joins < MAX_JOINS {
                    self.pending = Some(pend);
                } else {
                    self.handle(msg, &pend.meta);
                }
                return;
            }
            let msg = messages::parse(&pend.text);
            self.handle(msg, &pend.meta);
        }
        if let Some(held) = self.held.take() {
            if bare_tail {
                for sep in ["", " "] {
                    let joined = format!("{}{sep}{}", held.text, body);
                    let msg = messages::parse(&joined);
                    if !matches!(msg, Msg::Other | Msg::Unreadable) {
                        self.dispatch(&joined, msg, &held.meta);
                        return;
                    }
                }
            }
            self.handle(Msg::Other, &held.meta);
        }
        if let Some(r) = self.report.as_mut() {
            if self::in_report_line(r, body) {
                return;
            }
        }
        let msg = messages::parse(body);
        self.dispatch(body, msg, meta);
    }

    fn dispatch(&mut self, text: &str, msg: Msg, meta: &Meta) {
        // kmsg records are whole; anything else may be wrapped.
        let wrappable = meta.source != Some(Source::Kmsg);
        if wrappable && looks_cut(&msg) {
            self.pending = Some(Pending {
                text: text.to_string(),
                meta: meta.clone(),
                joins: 0,
            });
        } else if wrappable
            && matches!(msg, Msg::Other)
            && meta.source == Some(Source::Stamped)
            && self.report.as_ref().is_some_and(|r| r.killed.is_empty())
        {
            self.held = Some(Pending {
                text: text.to_string(),
                meta: meta.clone(),
                joins: 0,
            });
        } else {
            self.handle(msg, meta);
        }
    }

    fn flush_pending(&mut self) {
        if let Some(h) = self.held.take() {
            self.handle(Msg::Other, &h.meta);
        }
        if let Some(p) = self.pending.take() {
            let msg = messages::parse(&p.text);
            self.handle(msg, &p.meta);
        }
    }

    fn handle(&mut self, msg: Msg, meta: &Meta) {
        match msg {
            Msg::Other => {
                if let Some(r) = self.report.as_mut() {
                    r.idle_lines += 1;
                    if r.idle_lines > STALE_LINES && r.killed.is_empty() {
                        self.close_report("report stopped before the kill line");
                    }
                }
            }
            Msg::Invoked(t) => {
                self.close_report("a new report started before the kill line");
                self.report = Some(Report {
                    start_line: meta.line,
                    start_time: meta.kernel_time,
                    trigger: Some(t),
                    oom_evident: true,
                    ..Default::default()
                });
            }
            Msg::Killed(k) => self.killed(k, meta),
            Msg::Reaped { pid } => self.events.push(Event::Reaped { pid }),
            Msg::Unreadable | Msg::Cut => self.stats.unparsed += 1,
            Msg::GroupKill { path } => match self.report.as_mut() {
                Some(r) if r.killed.len() == 1 && r.group.is_none() => {
                    r.group = Some(path);
                    r.idle_lines = 0;
                    self.events.push(Event::Group { pid: r.killed[0] });
                }
                _ => {
                    let r = self.report_for(meta);
                    r.oom_evident = true;
                    r.group = Some(path);
                }
            },
            Msg::NoVictim => {
                if let Some(r) = self.report.take() {
                    if r.killed.is_empty() {
                        self.incomplete(&r, "no killable process");
                    }
                }
            }
            other => {
                let r = self.report_for(meta);
                r.idle_lines = 0;
                match other {
                    Msg::Cpuset { .. } | Msg::TasksTitle => r.oom_evident = true,
                    Msg::Usage {
                        counter,
                        usage_kb,
                        limit_kb,
                    } => {
                        r.memcg_evident = true;
                        r.oom_evident = true;
                        if counter == "memory" {
                            r.usage_kb = Some((usage_kb, limit_kb));
                        }
                    }
                    Msg::MemcgStats { path } => {
                        r.memcg_evident = true;
                        r.oom_evident = true;
                        r.stats_path = Some(path);
                    }
                    Msg::TaskIn {
                        task_memcg,
                        oom_memcg,
                    } => {
                        r.memcg_evident = true;
                        r.oom_evident = true;
                        r.task_in = Some((task_memcg, oom_memcg));
                    }
                    Msg::MemInfo => {
                        r.global_evident = true;
                        r.in_meminfo = true;
                        r.mem_info.get_or_insert_with(MemInfo::default);
                    }
                    Msg::TaskHeader(cols) => {
                        r.oom_evident = true;
                        r.in_meminfo = false;
                        r.columns = cols;
                        r.rows.clear();
                    }
                    Msg::Summary(s) => {
                        r.oom_evident = true;
                        r.summary = Some(s);
                    }
                    Msg::Select { global, pid, .. } => {
                        r.oom_evident = true;
                        r.select = Some((global, pid));
                    }
                    _ => {}
                }
            }
        }
    }

    /// The open report, or a new one whose start was lost.
    fn report_for(&mut self, meta: &Meta) -> &mut Report {
        if self.report.as_ref().is_some_and(|r| !r.killed.is_empty()) {
            self.report = None;
        }
        self.report.get_or_insert_with(|| Report {
            start_line: meta.line,
            start_time: meta.kernel_time,
            ..Default::default()
        })
    }

    fn close_report(&mut self, reason: &'static str) {
        if let Some(r) = self.report.take() {
            if r.killed.is_empty() && r.oom_evident {
                self.incomplete(&r, reason);
            }
        }
    }

    fn incomplete(&mut self, r: &Report, reason: &'static str) {
        self.stats.incomplete += 1;
        self.events.push(Event::Incomplete(Incomplete {
            line: r.start_line,
            kernel_time: r.start_time,
            trigger: r.trigger.as_ref().map(|t| t.comm.clone()),
            reason,
        }));
    }

    fn killed(&mut self, k: messages::Killed, meta: &Meta) {
        let mut kill = Kill::new(k.pid, meta.line);
        kill.kernel_time = meta.kernel_time;
        kill.wall_time = meta.wall_time.clone();
        kill.stamp = meta.stamp.clone();
        kill.seq = meta.seq;
        kill.comm = k.comm.clone();
        kill.uid = k.uid;
        kill.total_vm_bytes = k.total_vm_kb.map(kib);
        kill.anon_rss_bytes = k.anon_rss_kb.map(kib);
        kill.file_rss_bytes = k.file_rss_kb.map(kib);
        kill.shmem_rss_bytes = k.shmem_rss_kb.map(kib);
        kill.pgtables_bytes = k.pgtables_kb.map(kib);
        kill.oom_score_adj = k.oom_score_adj;
        kill.global = k.global;

        let attach = match self.report.as_mut() {
            Some(r) if r.killed.is_empty() => true,
            Some(r) if r.group.is_some() => {
                if r.killed.contains(&k.pid) {
                    self.stats.duplicates += 1;
                    return;
                }
                true
            }
            _ => false,
        };
        match self.report.as_mut() {
            Some(r) if attach => {
                r.killed.push(k.pid);
                r.in_meminfo = false;
                apply_report(&mut kill, r);
            }
            _ => {
                kill.bare = true;
                if kill.global == Some(false) {
                    kill.constraint = Some("memcg".into());
                }
            }
        }
        kill.check_qos();
        self.stats.kills += 1;
        self.events.push(Event::Kill(Box::new(kill)));
    }
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn kib(v: u64) -> u64 {
    v.saturating_mul(1024)
}

/// Lines read inside an open report: task rows and the Mem-Info block.
fn in_report_line(r: &mut Report, body: &str) -> bool {
    let t = body.trim_start();
    if !r.columns.is_empty() && t.starts_with('[') {
        if let Some(row) = messages::task_row(t, &r.columns) {
            r.rows.push(row);
            r.idle_lines = 0;
            return true;
        }
    }
    if let Some((what, n)) = messages::pages_line(t) {
        let mi = r.mem_info.get_or_insert_with(MemInfo::default);
        match what {
            "RAM" => mi.ram_pages = Some(n),
            "reserved" => mi.reserved_pages = Some(n),
            _ => {}
        }
        return true;
    }
    if r.in_meminfo {
        if t.starts_with("Node ") || t.starts_with("lowmem_reserve") {
            r.in_meminfo = false;
            return true;
        }
        let mi = r.mem_info.get_or_insert_with(MemInfo::default);
        let mut any = false;
        for (k, v) in messages::meminfo_pairs(t) {
            any = true;
            match k {
                "free" => mi.free_pages = Some(v),
                "active_file" => mi.active_file_pages = Some(v),
                "inactive_file" => mi.inactive_file_pages = Some(v),
                _ => {}
            }
        }
        return any;
    }
    false
}

/// A cut-off structured line whose tail may follow on the next line.
fn looks_cut(msg: &Msg) -> bool {
    match msg {
        Msg::Summary(s) => !s.complete,
        Msg::Killed(k) => !k.complete,
        Msg::Invoked(t) => t.oom_score_adj.is_none(),
        Msg::Cut => true,
        _ => false,
    }
}

/// A bare line that can only be the rest of a wrapped one.
fn is_wrapped_tail(body: &str) -> bool {
    let t = body.trim();
    !t.is_empty() && !t.contains(' ')
        || matches!(messages::parse(t), Msg::Other) && !t.starts_with('[') && t.len() < 400 && {
            // Field-ish text: `kB,`, `key:value`, `,uid=` and the like.
            t.contains("kB") || t.contains('=') || t.contains("oom_score_adj")
        }
}

fn apply_report(kill: &mut Kill, r: &Report) {
    let s = r.summary.as_ref();
    let select_pid = r.select.map(|(_, p)| p);
    // The summary and "Task in" name the chosen victim; a sacrificed child
    // or a group member may be another process.
    let same_victim = |pid: Option<u32>| pid.is_none_or(|p| p == kill.pid);
    let first = r.killed.len() == 1;

    kill.constraint = s
        .and_then(|s| s.constraint.clone())
        .or_else(|| r.memcg_evident.then(|| "memcg".into()));
    kill.global = s
        .and_then(|s| s.global)
        .or(kill.global)
        .or(r.select.and_then(|(g, _)| g))
        .or(if r.memcg_evident { Some(false) } else { None })
        .or(if r.global_evident { Some(true) } else { None });
    if kill.constraint.is_none() && kill.global == Some(false) {
        kill.constraint = Some("memcg".into());
    }
    kill.oom_memcg = s
        .and_then(|s| s.oom_memcg.clone())
        .or_else(|| r.task_in.as_ref().map(|t| t.1.clone()))
        .or_else(|| r.stats_path.clone());
    let victim_pid = s.and_then(|s| s.pid).or(select_pid);
    if first && same_victim(victim_pid) {
        kill.task_memcg = s
            .and_then(|s| s.task_memcg.clone())
            .or_else(|| r.task_in.as_ref().map(|t| t.0.clone()));
        if let Some(s) = s.filter(|s| s.pid == Some(kill.pid)) {
            kill.uid = kill.uid.or(s.uid);
            kill.comm = kill.comm.take().or_else(|| s.comm.clone());
        }
    }
    let row = r.rows.iter().find(|row| row.pid == kill.pid);
    // A mail client wraps at a space and drops it: if the comm differs from
    // a short, unwrapped copy of it only by spaces, take the copy.
    let copies = row.map(|r| r.comm.as_str()).into_iter().chain(
        s.filter(|s| s.pid == Some(kill.pid))
            .and_then(|s| s.comm.as_deref()),
    );
    for copy in copies {
        if kill
            .comm
            .as_deref()
            .is_some_and(|c| c != copy && squash(c) == squash(copy))
        {
            kill.comm = Some(copy.to_string());
        }
    }
    if let Some(row) = row {
        kill.uid = kill.uid.or(row.uid);
        kill.oom_score_adj = kill.oom_score_adj.or(row.oom_score_adj);
        if kill.comm.is_none() {
            kill.comm = Some(row.comm.clone());
        }
    }
    kill.group_kill = r.group.is_some();
    kill.trigger = r.trigger.clone();
    if !r.columns.is_empty() {
        kill.candidates = Some(r.rows.len());
        let mut top: Vec<&TaskRow> = r.rows.iter().collect();
        top.sort_by_key(|row| std::cmp::Reverse(row.rss_pages.unwrap_or(0)));
        kill.top_candidates = Some(
            top.into_iter()
                .take(5)
                .map(|row| Candidate {
                    pid: row.pid,
                    comm: row.comm.clone(),
                    rss_bytes: row.rss_pages.map(|p| p * PAGE_SIZE),
                    oom_score_adj: row.oom_score_adj,
                })
                .collect(),
        );
    }
    if let Some((u, l)) = r.usage_kb {
        kill.memcg_usage_bytes = Some(kib(u));
        kill.memcg_limit_bytes = Some(kib(l));
    }
    kill.mem_info = r.mem_info.clone().filter(|_| r.global_evident);
    identify(kill, r.group.as_deref());
}

/// Pod identity: from the victim's own cgroup, else from a limiting or
/// group cgroup that the victim must lie inside.
fn identify(kill: &mut Kill, group: Option<&str>) {
    let id = match kill.task_memcg.as_deref() {
        Some(t) => podref::identify(t),
        // The group cgroup is the more specific: every member lies inside it.
        None => [group, kill.oom_memcg.as_deref()]
            .into_iter()
            .flatten()
            .map(podref::identify)
            .find(|r| {
                matches!(
                    r.scope,
                    Some(Scope::Pod | Scope::Container | Scope::Conmon | Scope::Host)
                )
            })
            .unwrap_or_default(),
    };
    kill.cgroup_scope = id.scope;
    kill.pod_uid = id.pod_uid;
    kill.container_id = id.container_id;
    kill.runtime = id.runtime;
    kill.qos = id.qos;
}
