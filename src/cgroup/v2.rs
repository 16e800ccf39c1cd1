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
