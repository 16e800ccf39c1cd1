//! One reported kill: it counts itself and writes its log line, so the
//! metrics and the log never drift apart.

use crate::decode::Kill;
use crate::names::Names;
use crate::podref::Scope;
use crate::state::{Counters, KillLabels};
use crate::text;
use serde::Serialize;

/// How the victim's cgroup was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The kernel's report named it.
    Report,
    /// Matched to a cgroup's oom_kill counter (report rate-limited).
    KillCounter,
    /// Several containers of one pod matched: the pod is known.
    KillCounterPod,
    /// Not found.
    None,
}

#[derive(Debug, Serialize)]
pub struct KillEvent<'a> {
    #[serde(flatten)]
    pub kill: &'a Kill,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub node: Option<&'a str>,
    /// In the ring before oomwatch started.
    pub replayed: bool,
    pub cgroup_source: Source,
    /// `main` or `child` process of its container, when it can be told.
    pub victim_role: Option<&'static str>,
    /// Unix seconds.
    pub time: f64,
}

impl<'a> KillEvent<'a> {
    pub fn new(kill: &'a Kill, names: Names, node: Option<&'a str>, time: f64) -> Self {
        KillEvent {
            kill,
            namespace: names.namespace,
            pod: names.pod,
            container: names.container,
            node,
            replayed: false,
            cgroup_source: if kill.task_memcg.is_some() {
                Source::Report
            } else {
                Source::None
            },
            victim_role: None,
            time,
        }
    }

    /// The container's name, else its short id.
    fn container_or_id(&self) -> Option<String> {
        self.container.clone().or_else(|| {
            self.kill
                .container_id
                .as_ref()
                .map(|c| c[..c.len().min(12)].to_string())
        })
    }

    pub fn attributed(&self) -> bool {
        self.kill.cgroup_scope.is_some()
    }

    /// Metric labels. Unknown names fall back to the pod UID and the short
    /// container id, so two unnamed pods never share a series.
    pub fn labels(&self) -> KillLabels {
        let k = self.kill;
        let host = k.cgroup_scope == Some(Scope::Host);
        let pod = self
            .pod
            .clone()
            .or_else(|| k.pod_uid.clone())
            .unwrap_or_default();
        let container = self.container_or_id().unwrap_or_default();
        KillLabels {
            namespace: if host {
                String::new()
            } else {
                self.namespace.clone().unwrap_or_default()
            },
            pod: if host { String::new() } else { pod },
            container: if host { String::new() } else { container },
            qos_class: match (k.qos, host) {
                (Some(q), _) => q.as_str().to_string(),
                (None, true) => "host".into(),
                (None, false) => "unknown".into(),
            },
            constraint: k.constraint_label().to_string(),
        }
    }

    /// Count this kill.
    pub fn count(&self, c: &mut Counters) {
        let labels = self.labels();
        let pod_cgroup = self
            .kill
            .pod_uid
            .as_deref()
            .zip(
                self.kill
                    .task_memcg
                    .as_deref()
                    .or(self.kill.oom_memcg.as_deref()),
            )
            .and_then(|(uid, path)| crate::attribution::pod_prefix(path, uid));
        if let Some(b) = self.kill.anon_rss_bytes {
            c.victim_rss
                .entry(labels.qos_class.clone())
                .or_default()
                .observe(b as f64);
        }
        c.count_kill(labels, self.time, pod_cgroup);
        if !self.attributed() {
            c.unattributed += 1;
        }
        if let Some(v) = &self.kill.verdict {
            *c.verdicts.entry(v.clone()).or_default() += 1;
        }
    }

    /// Who died, in words.
    fn who(&self) -> String {
        let k = self.kill;
        let role = self
            .victim_role
            .map(|r| format!(", {r} process"))
            .unwrap_or_default();
        let proc_ = format!("pid {} ({}){role}", k.pid, k.comm.as_deref().unwrap_or("?"));
        match (&self.pod, k.cgroup_scope) {
            (Some(pod), _) => {
                let ns = self.namespace.as_deref().unwrap_or("?");
                let c = self.container_or_id().unwrap_or_else(|| "?".into());
                let q = k.qos.map_or("?", |q| q.as_str());
                format!("{ns}/{pod} container {c} ({q}) {proc_}")
            }
            _ => format!("{proc_} {}", text::victim(k)),
        }
    }

    /// The human log line.
    pub fn line(&self) -> String {
        let mut head = String::new();
        if let Some(n) = self.node {
            head.push_str(n);
            head.push(' ');
        }
        head.push_str(&format!(
            "{} OOM kill: {}",
            text::when(self.kill),
            self.who()
        ));
        let mut parts = vec![head];
        parts.extend(text::details(self.kill));
        match self.cgroup_source {
            Source::KillCounter => parts.push("cgroup found by its oom_kill counter".into()),
            Source::KillCounterPod => {
                parts.push("pod found by its oom_kill counters (container unknown)".into())
            }
            Source::None if !self.attributed() => parts.push("cgroup unknown".into()),
            _ => {}
        }
        if self.replayed {
            parts.push("replayed (in the kernel ring before oomwatch started)".into());
        }
        parts.join(" | ")
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Count, then write the line.
    pub fn emit(
        &self,
        c: &mut Counters,
        out: &mut impl std::io::Write,
        json: bool,
    ) -> std::io::Result<()> {
        self.count(c);
        writeln!(out, "{}", if json { self.json() } else { self.line() })
    }
}
