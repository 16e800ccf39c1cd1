//! cgroup v2 memory files.

/// Events of this cgroup alone (5.2+); `memory.events` counts descendants too.
pub const EVENTS_LOCAL: &str = "memory.events.local";
pub const EVENTS: &str = "memory.events";

/// `oom_kill N` of `memory.events(.local)`.
pub fn oom_kills(events: &str) -> Option<u64> {
    super::v1::key_value(events, "oom_kill")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_oom_kill_not_oom_group_kill() {
        let t = "low 0\nhigh 0\nmax 0\noom 1\noom_kill 3\noom_group_kill 1\n";
        assert_eq!(super::oom_kills(t), Some(3));
    }
}

pub const CURRENT: &str = "memory.current";
pub const STAT: &str = "memory.stat";

/// The kubelet's working set: `memory.current` minus `inactive_file`.
pub fn working_set(current: u64, stat: &str) -> u64 {
    current.saturating_sub(super::v1::key_value(stat, "inactive_file").unwrap_or(0))
}

/// The v2 root has no `memory.current`: like runc (which the kubelet's
/// cAdvisor uses), take usage as MemTotal - MemFree.
pub fn root_usage(mem_total: u64, mem_free: u64) -> u64 {
    mem_total.saturating_sub(mem_free)
}

#[cfg(test)]
mod working_set_tests {
    #[test]
    fn current_minus_inactive_file() {
        assert_eq!(
            super::working_set(5000, "anon 1\ninactive_file 1000\nactive_file 7\n"),
            4000
        );
        assert_eq!(super::root_usage(8000, 3000), 5000);
    }
}
