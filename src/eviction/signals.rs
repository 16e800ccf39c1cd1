//! The kubelet's memory eviction signals, sampled from the host's files.
//!
//! memory.available = capacity - working set of the root cgroup, where
//! capacity is MemTotal and the working set is usage minus inactive file
//! pages (v1: root `memory.usage_in_bytes` and `total_inactive_file`; v2:
//! MemTotal - MemFree and root `inactive_file`). allocatableMemory.available
//! = capacity - kube-reserved - system-reserved - working set of kubepods.

use crate::cgroup::{v1, v2, Memory, Version};
use procfs::FromRead;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since boot (the kernel log's clock).
    pub uptime: f64,
    pub capacity: u64,
    pub available: Option<i64>,
    pub allocatable_available: Option<i64>,
    /// /proc/meminfo MemAvailable: what `free` shows, not what the kubelet uses.
    pub mem_available: Option<u64>,
    pub psi_some_avg10: Option<f32>,
    pub psi_full_avg10: Option<f32>,
    pub psi_some_total_us: Option<u64>,
    pub psi_full_total_us: Option<u64>,
    /// Working set of the BestEffort pods (no memory requests), together.
    pub besteffort_ws: Option<u64>,
}

pub struct Sampler {
    proc: PathBuf,
    mem: Option<Memory>,
    kubepods: Option<PathBuf>,
    besteffort: Option<PathBuf>,
    reserved: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

impl Sampler {
    /// `kubepods`: the kubepods cgroup path (as the kernel prints it) when it
    /// is not `/kubepods.slice` or `/kubepods` (nested: kind, LXC).
    pub fn new(proc: &Path, mem: Option<Memory>, reserved: u64, kubepods: Option<&str>) -> Sampler {
        let given = kubepods.and_then(|k| mem.as_ref().map(|m| m.dir(k)));
        let kubepods = given.or_else(|| {
            mem.as_ref().and_then(|m| {
                ["kubepods.slice", "kubepods"]
                    .iter()
                    .map(|k| m.base.join(k))
                    .find(|p| p.is_dir())
            })
        });
        let besteffort = kubepods.as_ref().and_then(|k| {
            ["kubepods-besteffort.slice", "besteffort"]
                .iter()
                .map(|b| k.join(b))
                .find(|p| p.is_dir())
        });
        Sampler {
            proc: proc.to_path_buf(),
            mem,
            kubepods,
            besteffort,
            reserved,
        }
    }

    pub fn kubepods(&self) -> Option<&Path> {
        self.kubepods.as_deref()
    }

    /// Working set of a cgroup directory (not the v2 root).
    fn working_set(&self, dir: &Path) -> Option<u64> {
        let mem = self.mem.as_ref()?;
        let stat = std::fs::read_to_string(dir.join(v1::STAT)).ok()?;
        Some(match mem.version {
            Version::V1 => v1::working_set(read_u64(&dir.join(v1::USAGE))?, &stat),
            Version::V2 => v2::working_set(read_u64(&dir.join(v2::CURRENT))?, &stat),
        })
    }

    pub fn sample(&self) -> Sample {
        let mut s = Sample {
            uptime: procfs::Uptime::from_file(self.proc.join("uptime")).map_or(0.0, |u| u.uptime),
            ..Default::default()
        };
        let meminfo = procfs::Meminfo::from_file(self.proc.join("meminfo")).ok();
        if let Some(mi) = &meminfo {
            s.capacity = mi.mem_total;
            s.mem_available = mi.mem_available;
        }
        let root_ws = match (&self.mem, &meminfo) {
            (Some(m), _) if m.version == Version::V1 => self.working_set(&m.base),
            (Some(m), Some(mi)) => std::fs::read_to_string(m.base.join(v2::STAT))
                .ok()
                .map(|stat| v2::working_set(v2::root_usage(mi.mem_total, mi.mem_free), &stat)),
            _ => None,
        };
        if s.capacity > 0 {
            s.available = root_ws.map(|ws| s.capacity as i64 - ws as i64);
            s.allocatable_available = self
                .kubepods
                .as_deref()
                .and_then(|k| self.working_set(k))
                .map(|ws| s.capacity as i64 - self.reserved as i64 - ws as i64);
        }
        s.besteffort_ws = self.besteffort.as_deref().and_then(|b| self.working_set(b));
        if let Ok(p) = procfs::MemoryPressure::from_file(self.proc.join("pressure/memory")) {
            s.psi_some_avg10 = Some(p.some.avg10);
            s.psi_full_avg10 = Some(p.full.avg10);
            s.psi_some_total_us = Some(p.some.total);
            s.psi_full_total_us = Some(p.full.total);
        }
        s
    }
}

/// The last five minutes of samples.
#[derive(Debug, Default)]
pub struct Window {
    samples: VecDeque<Sample>,
}

pub const KEEP_SECONDS: f64 = 300.0;

impl Window {
    pub fn push(&mut self, s: Sample) {
        while self
            .samples
            .front()
            .is_some_and(|f| s.uptime - f.uptime > KEEP_SECONDS)
        {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Samples from `secs` before `t` up to `t` (and the first one after,
    /// which sampled what the kill left behind).
    pub fn before(&self, t: f64, secs: f64) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .filter(move |s| s.uptime >= t - secs && s.uptime <= t + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_five_minutes() {
        let mut w = Window::default();
        for t in 0..400 {
            w.push(Sample {
                uptime: t as f64,
                ..Default::default()
            });
        }
        assert_eq!(w.samples.front().unwrap().uptime, 99.0);
        assert_eq!(w.before(200.0, 10.0).count(), 12);
    }

    #[test]
    fn samples_a_v1_fixture_tree() {
        let d = std::env::temp_dir().join(format!("oomwatch-sig-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("proc/pressure")).unwrap();
        std::fs::create_dir_all(d.join("cg/memory/kubepods")).unwrap();
        std::fs::write(d.join("proc/uptime"), "123.45 99.0\n").unwrap();
        std::fs::write(d.join("proc/meminfo"), "MemTotal:        8150236 kB\nMemFree:          106748 kB\nMemAvailable:     150000 kB\nBuffers: 0 kB\nCached: 0 kB\nSwapCached: 0 kB\nActive: 0 kB\nInactive: 0 kB\nActive(anon): 0 kB\nInactive(anon): 0 kB\nActive(file): 0 kB\nInactive(file): 0 kB\nUnevictable: 0 kB\nMlocked: 0 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\nDirty: 0 kB\nWriteback: 0 kB\nAnonPages: 0 kB\nMapped: 0 kB\nShmem: 0 kB\nSlab: 0 kB\nSReclaimable: 0 kB\nSUnreclaim: 0 kB\nKernelStack: 0 kB\nPageTables: 0 kB\nNFS_Unstable: 0 kB\nBounce: 0 kB\nWritebackTmp: 0 kB\nCommitLimit: 0 kB\nCommitted_AS: 0 kB\nVmallocTotal: 0 kB\nVmallocUsed: 0 kB\nVmallocChunk: 0 kB\n").unwrap();
        std::fs::write(d.join("proc/pressure/memory"), "some avg10=1.50 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=567\n").unwrap();
        let cg = d.join("cg/memory");
        std::fs::write(
            cg.join("memory.usage_in_bytes"),
            format!("{}\n", 8000u64 << 20),
        )
        .unwrap();
        std::fs::write(
            cg.join("memory.stat"),
            format!("total_inactive_file {}\n", 100u64 << 20),
        )
        .unwrap();
        std::fs::write(
            cg.join("kubepods/memory.usage_in_bytes"),
            format!("{}\n", 7000u64 << 20),
        )
        .unwrap();
        std::fs::write(cg.join("kubepods/memory.stat"), "total_inactive_file 0\n").unwrap();
        let mem = Memory::detect(&d.join("cg")).unwrap();
        let s = Sampler::new(&d.join("proc"), Some(mem), 256 << 20, None).sample();
        let cap = 8150236u64 * 1024;
        assert_eq!(s.capacity, cap);
        assert_eq!(s.available, Some(cap as i64 - (7900i64 << 20)));
        assert_eq!(
            s.allocatable_available,
            Some(cap as i64 - (256i64 << 20) - (7000i64 << 20))
        );
        assert_eq!(
            (s.psi_some_avg10, s.psi_full_total_us, s.uptime),
            (Some(1.5), Some(567), 123.45)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
