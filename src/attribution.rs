//! Finding the cgroup of a kill whose report the kernel rate-limited away.
//!
//! The kernel bumps the victim cgroup's `oom_kill` counter just before it
//! prints `Killed process`. We keep a model of every cgroup's counter (what
//! we have accounted for); a kill without a cgroup is matched to a cgroup
//! whose counter has moved past the model. `/proc/<pid>/cgroup` cannot help
//! after the fact: a dead process already reads as the root cgroup.

use crate::cgroup::Memory;
use crate::podref::{self, Scope};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// At most this many cgroup directories are read in one scan.
const MAX_DIRS: usize = 50_000;
const MAX_DEPTH: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// Exactly one cgroup had an unexplained kill.
    Exact(String),
    /// Several containers of one pod did: the pod is known, not the container.
    Pod(String),
    /// Nothing, or cgroups of several pods.
    Unknown { candidates: usize },
}

pub struct Attributor {
    mem: Option<Memory>,
    /// cgroup path (as the kernel prints it) -> oom_kill count accounted for
    model: HashMap<String, u64>,
}

impl Attributor {
    /// `model`: the counts accounted for when the last run stopped (same
    /// boot), or None to take the current counts as the baseline.
    pub fn new(mem: Option<Memory>, model: Option<HashMap<String, u64>>) -> Self {
        let mut a = Attributor {
            mem,
            model: HashMap::new(),
        };
        a.model = model.unwrap_or_else(|| a.scan());
        a
    }

    /// The model, for the state file.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, u64> {
        self.model.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn available(&self) -> bool {
        self.mem.is_some()
    }

    /// A kill whose cgroup the report named: take that cgroup's counter as
    /// explained (read, not incremented: group kills count the victim twice).
    pub fn explain(&mut self, cgroup: &str) {
        let Some(mem) = &self.mem else { return };
        if let Some(n) = mem.oom_kills(&mem.dir(cgroup)) {
            self.model.insert(norm(cgroup), n);
        }
    }

    /// Match a kill without a cgroup to an unexplained counter increase.
    pub fn attribute(&mut self) -> Attribution {
        let now = self.scan();
        let mut moved: Vec<&String> = now
            .iter()
            .filter(|(k, v)| **v > self.model.get(*k).copied().unwrap_or(0))
            .map(|(k, _)| k)
            .collect();
        moved.sort();
        let result = match moved.as_slice() {
            [] => Attribution::Unknown { candidates: 0 },
            [one] => Attribution::Exact((*one).clone()),
            many => match common_pod(many) {
                Some(pod) => Attribution::Pod(pod),
                None => Attribution::Unknown {
                    candidates: many.len(),
                },
            },
        };
        // Account for one kill where we placed it; the rest stay unexplained
        // for the kills still to come.
        if !matches!(result, Attribution::Unknown { .. }) {
            if let Some(first) = moved.first() {
                *self.model.entry((*first).clone()).or_insert(0) += 1;
            }
        }
        result
    }

    /// Every memory cgroup with a non-zero oom_kill counter.
    fn scan(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        let Some(mem) = &self.mem else { return out };
        let mut stack = vec![(mem.base.clone(), 0usize)];
        let mut seen = 0;
        while let Some((dir, depth)) = stack.pop() {
            seen += 1;
            if seen > MAX_DIRS {
                break;
            }
            if let Some(n) = mem.oom_kills(&dir).filter(|n| *n > 0) {
                out.insert(cgroup_path(&mem.base, &dir), n);
            }
            if depth >= MAX_DEPTH {
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push((e.path(), depth + 1));
                    }
                }
            }
        }
        out
    }
}

fn norm(cgroup: &str) -> String {
    format!("/{}", cgroup.trim_matches('/'))
}

fn cgroup_path(base: &Path, dir: &Path) -> String {
    let rel = dir
        .strip_prefix(base)
        .map(PathBuf::from)
        .unwrap_or_default();
    norm(&rel.to_string_lossy())
}

/// The pod cgroup shared by all paths, when they are containers of one pod.
fn common_pod(paths: &[&String]) -> Option<String> {
    let uid = |p: &str| {
        let r = podref::identify(p);
        matches!(r.scope, Some(Scope::Container | Scope::Pod | Scope::Conmon))
            .then_some(r.pod_uid)
            .flatten()
    };
    let first = uid(paths[0])?;
    if !paths
        .iter()
        .all(|p| uid(p).as_deref() == Some(first.as_str()))
    {
        return None;
    }
    pod_prefix(paths[0], &first)
}

/// The path up to the segment naming the pod.
pub fn pod_prefix(path: &str, pod_uid: &str) -> Option<String> {
    let alt = pod_uid.replace('-', "_");
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
        if seg.to_ascii_lowercase().contains(pod_uid) || seg.to_ascii_lowercase().contains(&alt) {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Version;

    fn tree() -> (PathBuf, Memory) {
        let d = std::env::temp_dir().join(format!(
            "oomwatch-attr-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        for c in ["a", "b"] {
            let p = d.join(format!(
                "kubepods/burstable/pod11111111-2222-3333-4444-555555555555/{c}"
            ));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(
                p.join("memory.oom_control"),
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            )
            .unwrap();
        }
        let m = Memory {
            version: Version::V1,
            base: d.clone(),
        };
        (d, m)
    }

    fn bump(d: &Path, c: &str, n: u64) {
        let p = d.join(format!(
            "kubepods/burstable/pod11111111-2222-3333-4444-555555555555/{c}/memory.oom_control"
        ));
        std::fs::write(
            p,
            format!("oom_kill_disable 0\nunder_oom 0\noom_kill {n}\n"),
        )
        .unwrap();
    }

    #[test]
    fn one_unexplained_increase_is_exact() {
        let (d, m) = tree();
        let mut a = Attributor::new(Some(m), None);
        bump(&d, "a", 1);
        assert_eq!(
            a.attribute(),
            Attribution::Exact(
                "/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/a".into()
            )
        );
        // Accounted for: a second bare kill with no new increase is unknown.
        assert_eq!(a.attribute(), Attribution::Unknown { candidates: 0 });
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn explained_kills_are_not_candidates_and_same_pod_gives_the_pod() {
        let (d, m) = tree();
        let mut a = Attributor::new(Some(m), None);
        bump(&d, "a", 1);
        a.explain("/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/a");
        assert_eq!(a.attribute(), Attribution::Unknown { candidates: 0 });
        bump(&d, "a", 2);
        bump(&d, "b", 1);
        assert_eq!(
            a.attribute(),
            Attribution::Pod("/kubepods/burstable/pod11111111-2222-3333-4444-555555555555".into())
        );
        assert!(matches!(a.attribute(), Attribution::Exact(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pod_prefix_of_both_drivers() {
        assert_eq!(
            pod_prefix("/kubepods/burstable/podab-cd/x", "ab-cd").as_deref(),
            Some("/kubepods/burstable/podab-cd")
        );
        assert_eq!(
            pod_prefix("/kubepods.slice/kubepods-podab_cd.slice/x.scope", "ab-cd").as_deref(),
            Some("/kubepods.slice/kubepods-podab_cd.slice")
        );
        assert_eq!(pod_prefix("/x", "ab-cd"), None);
    }
}
