//! cgroup v1 memory controller files.

pub const OOM_CONTROL: &str = "memory.oom_control";

/// `oom_kill N` of `memory.oom_control` (kernels 4.13+). v1 counts only the
/// cgroup's own processes, not its children's.
pub fn oom_kills(oom_control: &str) -> Option<u64> {
    key_value(oom_control, "oom_kill")
}

/// `key value` lines, as in memory.stat and memory.oom_control.
pub fn key_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counter_and_survives_garbage() {
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom x\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(oom_kills("oom_kill -1\n"), None);
        assert_eq!(oom_kills(""), None);
    }
}

/// The kubelet's working set: usage minus inactive file pages
/// (`memory.usage_in_bytes` and `total_inactive_file` of `memory.stat`).
pub fn working_set(usage: u64, stat: &str) -> u64 {
    usage.saturating_sub(key_value(stat, "total_inactive_file").unwrap_or(0))
}

pub const USAGE: &str = "memory.usage_in_bytes";
pub const STAT: &str = "memory.stat";

#[cfg(test)]
mod working_set_tests {
    #[test]
    fn usage_minus_inactive_file() {
        let stat = "cache 4096\ninactive_file 10\ntotal_inactive_file 1000\n";
        assert_eq!(super::working_set(5000, stat), 4000);
        assert_eq!(super::working_set(500, stat), 0);
    }
}
