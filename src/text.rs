//! Human-readable lines for kills and summaries: what `decode` prints and
//! what the daemon logs, so the two read the same.

use crate::decode::{Decoded, Kill};
use crate::podref::Scope;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Time of a kill as the input gave it.
pub fn when(k: &Kill) -> String {
    match (&k.wall_time, k.kernel_time, &k.stamp) {
        (Some(w), _, _) => w.clone(),
        (None, Some(t), Some(s)) => format!("{s} [{t:.6}]"),
        (None, Some(t), None) => format!("[{t:.6}]"),
        (None, None, Some(s)) => s.clone(),
        (None, None, None) => "[time unknown]".into(),
    }
}

/// The victim: pod and container, or the host cgroup.
pub fn victim(k: &Kill) -> String {
    let mut s = String::new();
    match k.cgroup_scope {
        Some(Scope::Host) => {
            let _ = write!(
                s,
                "host cgroup {}",
                k.task_memcg
                    .as_deref()
                    .or(k.oom_memcg.as_deref())
                    .unwrap_or("?")
            );
        }
        Some(_) if k.pod_uid.is_some() => {
            let _ = write!(
                s,
                "{} pod {}",
                k.qos.map_or("?", |q| q.as_str()),
                k.pod_uid.as_deref().unwrap_or("?")
            );
            match (&k.container_id, k.cgroup_scope) {
                (Some(id), Some(Scope::Conmon)) => {
                    let _ = write!(s, " conmon of container {}", short(id));
                }
                (Some(id), _) => {
                    let _ = write!(s, " container {}", short(id));
                }
                (None, Some(Scope::Container)) => s.push_str(" container ?"),
                _ => {}
            }
            if let Some(rt) = k.runtime {
                let _ = write!(s, " ({})", rt.as_str());
            }
        }
        _ => s.push_str(match &k.task_memcg {
            Some(_) => "cgroup unknown",
            None => "cgroup not logged",
        }),
    }
    s
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Why: global, or which cgroup's limit.
pub fn cause(k: &Kill) -> String {
    match (k.global, k.constraint.as_deref()) {
        (Some(true), Some("none")) | (Some(true), None) => "global OOM (node out of memory)".into(),
        (Some(true), Some(c)) => format!("global OOM ({c} constraint)"),
        (Some(false), _) | (None, Some("memcg")) => {
            let mut s = String::from("cgroup limit");
            if let Some(m) = &k.oom_memcg {
                let _ = write!(s, " of {m}");
                if k.task_memcg.as_deref().is_some_and(|t| t != m) {
                    s.push_str(" (a parent of the victim's cgroup)");
                }
            }
            if let Some(l) = k.memcg_limit_bytes {
                let _ = write!(s, ", limit {}", mib(l));
            }
            s
        }
        _ => "cause not logged".into(),
    }
}

/// Why, how big, who triggered: the parts after the victim.
pub fn details(k: &Kill) -> Vec<String> {
    let mut v = vec![cause(k)];
    if let Some(b) = k.anon_rss_bytes {
        v.push(format!("anon-rss {}", mib(b)));
    }
    if let Some(a) = k.oom_score_adj {
        let mut s = format!("oom_score_adj {a}");
        if let Some(q) = k.qos.filter(|_| k.qos_conflict) {
            let (lo, hi) = q.expected_score_adj();
            let want = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}..{hi}")
            };
            let _ = write!(
                s,
                " (expected {want} for {q}: QoS read from the cgroup path)"
            );
        }
        v.push(s);
    }
    if let Some(t) = &k.trigger {
        let mut s = format!("triggered by {}", t.comm);
        if let Some(o) = t.order {
            let _ = write!(s, " (order {o})");
        }
        v.push(s);
    }
    if k.group_kill {
        v.push("group kill (memory.oom.group)".into());
    }
    if k.bare {
        v.push("report rate-limited by the kernel: only the kill line was logged".into());
    }
    if let (Some(verdict), Some(r)) = (&k.verdict, &k.verdict_reason) {
        v.push(format!("verdict {verdict}: {r}"));
    }
    v
}

/// One line per kill.
pub fn kill_line(k: &Kill) -> String {
    let mut parts = vec![format!(
        "{} OOM kill: pid {} ({}) {}",
        when(k),
        k.pid,
        k.comm.as_deref().unwrap_or("?"),
        victim(k)
    )];
    parts.extend(details(k));
    parts.push(format!("line {}", k.line));
    parts.join(" | ")
}

/// Totals by constraint and by QoS class.
pub fn summary(d: &Decoded) -> String {
    let mut by_cause: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_qos: BTreeMap<String, usize> = BTreeMap::new();
    for k in &d.kills {
        *by_cause.entry(k.constraint_label()).or_default() += 1;
        let q = match (k.qos, k.cgroup_scope) {
            (Some(q), _) => q.as_str().to_string(),
            (None, Some(Scope::Host)) => "host".into(),
            _ => "unknown".into(),
        };
        *by_qos.entry(q).or_default() += 1;
    }
    let n = d.kills.len();
    let mut s = format!("{n} OOM kill{}", if n == 1 { "" } else { "s" });
    if n > 0 {
        let _ = write!(
            s,
            "; by constraint: {}; by QoS: {}",
            join(&by_cause),
            join(&by_qos)
        );
    }
    if !d.incomplete.is_empty() {
        let _ = write!(
            s,
            "; {} incomplete report(s) without a kill line",
            d.incomplete.len()
        );
    }
    if d.stats.unparsed > 0 {
        let _ = write!(s, "; {} OOM line(s) could not be read", d.stats.unparsed);
    }
    if d.stats.duplicates > 0 {
        let _ = write!(s, "; {} duplicate(s) skipped", d.stats.duplicates);
    }
    s
}

fn join<K: std::fmt::Display>(m: &BTreeMap<K, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
