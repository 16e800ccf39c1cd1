//! The decoded record of one OOM kill, as `decode --format json` prints it.

use super::messages::Trigger;
use crate::podref::{Qos, Runtime, Scope};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kill {
    /// Seconds since boot.
    pub kernel_time: Option<f64>,
    pub wall_time: Option<String>,
    /// 1-based input line of the `Killed process` line.
    pub line: usize,
    /// kmsg sequence number of the `Killed process` record.
    pub seq: Option<u64>,
    pub pid: u32,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    /// `none`, `memcg`, `cpuset`, `memory_policy`.
    pub constraint: Option<String>,
    /// True when no cgroup limit caused the kill.
    pub global: Option<bool>,
    pub oom_memcg: Option<String>,
    pub task_memcg: Option<String>,
    /// What the victim's cgroup is: container, conmon, pod, qos, kubepods or host.
    pub cgroup_scope: Option<Scope>,
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<Runtime>,
    pub qos: Option<Qos>,
    /// oom_score_adj contradicts the QoS class read from the path.
    pub qos_conflict: bool,
    pub total_vm_bytes: Option<u64>,
    pub anon_rss_bytes: Option<u64>,
    pub file_rss_bytes: Option<u64>,
    pub shmem_rss_bytes: Option<u64>,
    pub pgtables_bytes: Option<u64>,
    pub oom_score_adj: Option<i32>,
    /// Killed with its whole cgroup (memory.oom.group).
    pub group_kill: bool,
    /// Only the `Killed process` line was printed (the kernel's rate limit
    /// drops the rest of the report in bursts).
    pub bare: bool,
    /// The oom_reaper reported freeing the victim's memory.
    pub reaped: bool,
    pub trigger: Option<Trigger>,
    pub candidates: Option<usize>,
    pub top_candidates: Option<Vec<Candidate>>,
    /// The limiting memcg's usage and limit (`memory: usage ..., limit ...`).
    pub memcg_usage_bytes: Option<u64>,
    pub memcg_limit_bytes: Option<u64>,
    /// Page counts from a global report's Mem-Info block.
    pub mem_info: Option<MemInfo>,
    /// Why the kubelet did not evict instead (see eviction/verdict.rs).
    pub verdict: Option<String>,
    pub verdict_reason: Option<String>,
    /// memory.available estimated from Mem-Info (offline decoding only).
    pub memory_available_estimate_bytes: Option<u64>,
    /// The stamp as written (syslog), for display only.
    #[serde(skip)]
    pub stamp: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub pid: u32,
    pub comm: String,
    pub rss_bytes: Option<u64>,
    pub oom_score_adj: Option<i32>,
}

/// Page counts at the moment of a global OOM (4 KiB pages).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemInfo {
    pub free_pages: Option<u64>,
    pub active_file_pages: Option<u64>,
    pub inactive_file_pages: Option<u64>,
    pub ram_pages: Option<u64>,
    pub reserved_pages: Option<u64>,
}

pub const PAGE_SIZE: u64 = 4096;

impl Kill {
    pub fn new(pid: u32, line: usize) -> Self {
        Kill {
            kernel_time: None,
            wall_time: None,
            line,
            seq: None,
            pid,
            comm: None,
            uid: None,
            constraint: None,
            global: None,
            oom_memcg: None,
            task_memcg: None,
            cgroup_scope: None,
            pod_uid: None,
            container_id: None,
            runtime: None,
            qos: None,
            qos_conflict: false,
            total_vm_bytes: None,
            anon_rss_bytes: None,
            file_rss_bytes: None,
            shmem_rss_bytes: None,
            pgtables_bytes: None,
            oom_score_adj: None,
            group_kill: false,
            bare: false,
            reaped: false,
            trigger: None,
            candidates: None,
            top_candidates: None,
            memcg_usage_bytes: None,
            memcg_limit_bytes: None,
            mem_info: None,
            verdict: None,
            verdict_reason: None,
            memory_available_estimate_bytes: None,
            stamp: None,
        }
    }

    /// The constraint as a metric label: `global` for every kill that no
    /// cgroup limit caused and whose constraint is unknown or `none`.
    pub fn constraint_label(&self) -> &str {
        match (self.constraint.as_deref(), self.global) {
            (Some("none"), _) => "global",
            (Some(c), _) => c,
            (None, Some(true)) => "global",
            (None, Some(false)) => "memcg",
            (None, None) => "unknown",
        }
    }

    /// oom_score_adj against the class: BestEffort 1000, Burstable 2..999,
    /// Guaranteed -997. Sandboxes (-998) and critical pods (-997) differ too.
    pub fn check_qos(&mut self) {
        self.qos_conflict = match (self.qos, self.oom_score_adj) {
            (Some(q), Some(adj)) => {
                let (lo, hi) = q.expected_score_adj();
                adj < lo || adj > hi
            }
            _ => false,
        };
    }
}
