//! Reading memory cgroups: which version, and the per-cgroup OOM-kill count.
//! Version differences live in `v1.rs` and `v2.rs`; parsing is pure.

pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The memory hierarchy under a cgroup root such as `/sys/fs/cgroup`.
#[derive(Clone, Debug)]
pub struct Memory {
    pub version: Version,
    /// Where memory cgroup paths (as the kernel prints them) start.
    pub base: PathBuf,
}

impl Memory {
    /// v1 when `<root>/memory` holds the memory controller, else v2 when the
    /// root is a cgroup2 mount with the memory controller.
    pub fn detect(root: &Path) -> Option<Memory> {
        let v1 = root.join("memory");
        if v1.join("memory.usage_in_bytes").exists() {
            return Some(Memory {
                version: Version::V1,
                base: v1,
            });
        }
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
        controllers
            .split_whitespace()
            .any(|c| c == "memory")
            .then(|| Memory {
                version: Version::V2,
                base: root.to_path_buf(),
            })
    }

    /// Directory of a cgroup path as printed by the kernel (`/kubepods/...`).
    pub fn dir(&self, cgroup: &str) -> PathBuf {
        self.base.join(cgroup.trim_start_matches('/'))
    }

    /// OOM kills of processes in this cgroup itself (not its children).
    pub fn oom_kills(&self, dir: &Path) -> Option<u64> {
        match self.version {
            Version::V1 => v1::oom_kills(&std::fs::read_to_string(dir.join(v1::OOM_CONTROL)).ok()?),
            Version::V2 => std::fs::read_to_string(dir.join(v2::EVENTS_LOCAL))
                .ok()
                .and_then(|s| v2::oom_kills(&s))
                .or_else(|| v2::oom_kills(&std::fs::read_to_string(dir.join(v2::EVENTS)).ok()?)),
        }
    }
}
