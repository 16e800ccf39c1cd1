//! The live side of eviction watch: sample on a timer, judge each kill,
//! export the signals, warn once about settings that make eviction unlikely.

use super::config::Eviction;
use super::signals::{Sample, Sampler, Window};
use super::verdict;
use crate::daemon::Judge;
use crate::metrics::{counter, family, gauge, Extra};
use crate::text::mib;
use prometheus::proto::MetricType;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

pub struct Watch {
    sampler: Sampler,
    window: Arc<Mutex<Window>>,
    eviction: Arc<Eviction>,
    warned: BTreeSet<&'static str>,
    min_free_kbytes: Option<u64>,
}

impl Watch {
    pub fn new(sampler: Sampler, eviction: Eviction, min_free_kbytes: Option<u64>) -> Watch {
        Watch {
            sampler,
            window: Arc::default(),
            eviction: Arc::new(eviction),
            warned: BTreeSet::new(),
            min_free_kbytes,
        }
    }

    pub fn eviction(&self) -> &Eviction {
        &self.eviction
    }

    pub fn kubepods(&self) -> Option<&std::path::Path> {
        self.sampler.kubepods()
    }

    /// Take one sample; warn about what it shows, once per condition.
    pub fn tick(&mut self) {
        let s = self.sampler.sample();
        self.warn(&s);
        self.warn_growth(&s);
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s);
    }

    fn warn(&mut self, s: &Sample) {
        let ev = self.eviction.clone();
        let mut once = |key: &'static str, msg: String| {
            if self.warned.insert(key) {
                tracing::warn!("{msg}");
            }
        };
        if s.available.is_none() {
            once("no-signal", "cannot compute memory.available from the cgroup and /proc files: kills will be judged 'unknown'".into());
        }
        match ev.hard.map(|t| t.bytes(s.capacity)) {
            None => once("no-hard", format!("no memory.available hard eviction threshold ({}): the kubelet will not evict on memory pressure before the kernel OOM-kills", ev.source)),
            Some(t) => {
                if let Some(mfk) = self.min_free_kbytes {
                    // The kernel reclaims hard below its low watermark (about
                    // 1.25x min_free_kbytes) and OOM-kills near min.
                    let low = mfk * 1024 * 5 / 4;
                    if t < 2 * low {
                        once("low-hard", format!("the memory.available hard threshold {} is less than twice the kernel's low watermark (~{}, from min_free_kbytes {mfk}): memory the kubelet counts as available can be gone before it checks again, and the kernel's OOM killer acts first", mib(t), mib(low)));
                    }
                }
            }
        }
    }

    /// Pods without memory requests (BestEffort) that grew by more than the
    /// hard threshold within one kubelet housekeeping period (10 s) can pass
    /// the threshold between two of its checks.
    fn warn_growth(&mut self, s: &Sample) {
        let Some(now) = s.besteffort_ws else { return };
        let Some(t) = self.eviction.hard.map(|t| t.bytes(s.capacity)) else {
            return;
        };
        let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let before = w
            .before(s.uptime - 1.0, 9.0)
            .filter_map(|x| x.besteffort_ws)
            .min();
        drop(w);
        if before.is_some_and(|b| now > b && now - b > t) && self.warned.insert("besteffort-growth")
        {
            tracing::warn!(
                "pods without memory requests (BestEffort) grew by {} within 10 s, more than the memory.available hard threshold {}: they can pass it between two kubelet checks, and the kernel's OOM killer acts first",
                mib(now - before.unwrap_or(0)),
                mib(t)
            );
        }
    }

    /// The judge for each kill.
    pub fn judge(&self) -> Judge {
        let (window, ev) = (self.window.clone(), self.eviction.clone());
        Box::new(move |k| {
            Some(verdict::judge(
                k,
                &window.lock().unwrap_or_else(|p| p.into_inner()),
                &ev,
            ))
        })
    }

    /// The signal gauges for /metrics.
    pub fn metrics(&self) -> Extra {
        let (window, ev) = (self.window.clone(), self.eviction.clone());
        Arc::new(move || {
            let w = window.lock().unwrap_or_else(|p| p.into_inner());
            let Some(s) = w.last() else { return Vec::new() };
            let mut out = Vec::new();
            let mut g = |name: &str, help: &str, v: Option<f64>| {
                if let Some(v) = v {
                    out.push(family(name, help, MetricType::GAUGE, vec![gauge(&[], v)]));
                }
            };
            g("oomwatch_memory_available_bytes", "memory.available as the kubelet computes it: capacity minus the root cgroup's working set.", s.available.map(|v| v as f64));
            g(
                "oomwatch_allocatable_memory_available_bytes",
                "allocatableMemory.available: allocatable minus the kubepods cgroup's working set.",
                s.allocatable_available.map(|v| v as f64),
            );
            g(
                "oomwatch_meminfo_available_bytes",
                "MemAvailable from /proc/meminfo (what free shows; not the kubelet's number).",
                s.mem_available.map(|v| v as f64),
            );
            let thresholds: Vec<_> = [("hard", ev.hard), ("soft", ev.soft)]
                .iter()
                .filter_map(|(kind, t)| {
                    t.map(|t| {
                        gauge(
                            &[("signal", "memory.available"), ("kind", kind)],
                            t.bytes(s.capacity) as f64,
                        )
                    })
                })
                .collect();
            if !thresholds.is_empty() {
                out.push(family(
                    "oomwatch_eviction_threshold_bytes",
                    "The kubelet's memory eviction thresholds.",
                    MetricType::GAUGE,
                    thresholds,
                ));
            }
            let psi: Vec<_> = [("some", s.psi_some_total_us), ("full", s.psi_full_total_us)]
                .iter()
                .filter_map(|(kind, t)| t.map(|us| counter(&[("kind", kind)], us as f64 / 1e6)))
                .collect();
            if !psi.is_empty() {
                out.push(family(
                    "oomwatch_memory_pressure_seconds_total",
                    "Time tasks stalled on memory (PSI), some or all of them.",
                    MetricType::COUNTER,
                    psi,
                ));
            }
            out
        })
    }
}
