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
