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

    /// The cgroup of a process from `/proc/<pid>/cgroup`, for this hierarchy.
    pub fn cgroup_of(&self, proc_cgroup: &str) -> Option<String> {
        proc_cgroup.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_id, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            let ours = match self.version {
                Version::V1 => ctrl.split(',').any(|c| c == "memory"),
                Version::V2 => ctrl.is_empty(),
            };
            ours.then(|| path.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_of_a_process() {
        let v1 = Memory {
            version: Version::V1,
            base: "/x".into(),
        };
        let text = "12:pids:/a\n4:memory:/kubepods/burstable/pod1/abc\n0::/\n";
        assert_eq!(
            v1.cgroup_of(text).as_deref(),
            Some("/kubepods/burstable/pod1/abc")
        );
        let v2 = Memory {
            version: Version::V2,
            base: "/x".into(),
        };
        assert_eq!(
            v2.cgroup_of("0::/kubepods.slice/x.scope\n").as_deref(),
            Some("/kubepods.slice/x.scope")
        );
        assert_eq!(v2.cgroup_of("garbage"), None);
    }
}
