//! Why the kubelet did not evict instead: one verdict per kill.

use super::config::Eviction;
use super::signals::Window;
use crate::decode::{Kill, PAGE_SIZE};
use crate::podref::{self, Scope};
use crate::text::mib;

pub const MEMCG_LIMIT: &str = "memcg-limit";
pub const ALLOCATABLE: &str = "allocatable";
pub const TOO_SLOW: &str = "eviction-too-slow";
pub const BELOW_RADAR: &str = "below-eviction-radar";
pub const UNKNOWN: &str = "unknown";

/// How far back before a kill the samples are looked at: one kubelet
/// housekeeping period.
pub const LOOKBACK: f64 = 10.0;

fn signed_mib(v: i64) -> String {
    if v < 0 {
        format!("-{}", mib(v.unsigned_abs()))
    } else {
        mib(v as u64)
    }
}

/// Kills caused by a cgroup limit, which eviction does not act on.
fn by_limit(k: &Kill) -> Option<(String, String)> {
    if k.global != Some(false) && k.constraint.as_deref() != Some("memcg") {
        return None;
    }
    let memcg = k.oom_memcg.as_deref().unwrap_or("?");
    let limit = k
        .memcg_limit_bytes
        .map(|l| format!(" ({})", mib(l)))
        .unwrap_or_default();
    Some(if podref::identify(memcg).scope == Some(Scope::Kubepods) {
        (ALLOCATABLE.into(), format!("the kubepods cgroup {memcg}{limit} hit its limit: node-allocatable enforcement, the pods together used all the kubelet allows them"))
    } else {
        (MEMCG_LIMIT.into(), format!("the limit of {memcg}{limit} was hit; eviction does not act on container or pod limits"))
    })
}

fn compare(min: i64, ev: &Eviction, capacity: u64, how: &str) -> (String, String) {
    match ev.hard.map(|t| t.bytes(capacity)) {
        None => (BELOW_RADAR.into(), format!("memory.available was at least {} {how}, and no memory.available hard threshold is set ({})", signed_mib(min), ev.source)),
        Some(t) if min < t as i64 => (
            TOO_SLOW.into(),
            format!("memory.available fell to {} {how}, below the hard threshold {}: the kubelet's eviction loop (every 10 s, one pod at a time) was too slow", signed_mib(min), mib(t)),
        ),
        Some(t) => (
            BELOW_RADAR.into(),
            format!("memory.available was at least {} {how}, never below the hard threshold {}: the kubelet could not have evicted (threshold too low for this node, or memory it does not count)", signed_mib(min), mib(t)),
        ),
    }
}

/// A live kill, judged against the sampled signals.
pub fn judge(k: &Kill, window: &Window, ev: &Eviction) -> (String, String) {
    if let Some(v) = by_limit(k) {
        return v;
    }
    let Some(t) = k.kernel_time else {
        return (UNKNOWN.into(), "the kill has no kernel time".into());
    };
    let samples: Vec<_> = window
        .before(t, LOOKBACK)
        .filter(|s| s.available.is_some())
        .collect();
    let Some(min) = samples.iter().filter_map(|s| s.available).min() else {
        return (UNKNOWN.into(), format!("no sample of memory.available in the {LOOKBACK} s before the kill (oomwatch started later, or the signals could not be read)"));
    };
    let capacity = samples.iter().map(|s| s.capacity).max().unwrap_or(0);
    let (v, mut r) = compare(
        min,
        ev,
        capacity,
        &format!("at its lowest in the {LOOKBACK} s before the kill"),
    );
    if let Some(p) = samples
        .iter()
        .filter_map(|s| s.psi_some_avg10)
        .reduce(f32::max)
    {
        r.push_str(&format!("; memory PSI some avg10 up to {p:.1}%"));
    }
    (v, r)
}

/// Offline, from a report alone: the Mem-Info block's free and inactive
/// file pages at the moment of the kill estimate memory.available.
pub fn estimate(k: &mut Kill, ev: &Eviction) {
    if let Some((v, r)) = by_limit(k) {
        k.verdict = Some(v);
        k.verdict_reason = Some(r);
        return;
    }
    let Some(mi) = k.mem_info.as_ref().filter(|_| k.global == Some(true)) else {
        return;
    };
    let (Some(free), Some(inactive)) = (mi.free_pages, mi.inactive_file_pages) else {
        return;
    };
    let avail = (free + inactive) * PAGE_SIZE;
    let capacity = mi.ram_pages.map_or(0, |r| {
        r.saturating_sub(mi.reserved_pages.unwrap_or(0)) * PAGE_SIZE
    });
    let (v, r) = compare(
        avail as i64,
        ev,
        capacity,
        "at the kill (estimated from the report's Mem-Info: free + inactive_file pages)",
    );
    k.memory_available_estimate_bytes = Some(avail);
    k.verdict = Some(v);
    k.verdict_reason = Some(r);
}

#[cfg(test)]
mod tests {
    use super::super::config::Threshold;
    use super::super::signals::Sample;
    use super::*;
    use crate::decode::MemInfo;

    const MI: u64 = 1048576;

    fn global(t: f64) -> Kill {
        let mut k = Kill::new(1, 1);
        k.global = Some(true);
        k.constraint = Some("none".into());
        k.kernel_time = Some(t);
        k
    }

    fn window(avail_mib: &[i64]) -> Window {
        let mut w = Window::default();
        for (i, a) in avail_mib.iter().enumerate() {
            w.push(Sample {
                uptime: 90.0 + i as f64,
                capacity: 8 << 30,
                available: Some(a * MI as i64),
                psi_some_avg10: Some(i as f32),
                ..Default::default()
            });
        }
        w
    }

    #[test]
    fn global_kills_against_the_threshold() {
        let ev = Eviction::default();
        let (v, r) = judge(&global(99.5), &window(&[500, 300, 150, 104, 120]), &ev);
        assert_eq!(v, BELOW_RADAR, "{r}");
        assert!(
            r.contains("at least 104.0 MiB")
                && r.contains("100.0 MiB")
                && r.contains("PSI some avg10 up to 4.0%"),
            "{r}"
        );
        let (v, _) = judge(&global(99.5), &window(&[500, 80, 300]), &ev);
        assert_eq!(v, TOO_SLOW);
        let none = Eviction {
            hard: None,
            ..Default::default()
        };
        assert_eq!(judge(&global(99.5), &window(&[50]), &none).0, BELOW_RADAR);
        let (v, r) = judge(&global(500.0), &window(&[50]), &ev);
        assert_eq!(v, UNKNOWN, "{r}");
        let pct = Eviction {
            hard: Some(Threshold::Percent(5.0)),
            ..Default::default()
        };
        assert_eq!(judge(&global(99.5), &window(&[300]), &pct).0, TOO_SLOW);
    }

    #[test]
    fn limits_are_not_eviction() {
        let mut k = Kill::new(1, 1);
        k.global = Some(false);
        k.constraint = Some("memcg".into());
        k.oom_memcg = Some("/kubepods/burstable/pod1/c".into());
        assert_eq!(
            judge(&k, &Window::default(), &Eviction::default()).0,
            MEMCG_LIMIT
        );
        k.oom_memcg = Some("/kubepods.slice".into());
        assert_eq!(
            judge(&k, &Window::default(), &Eviction::default()).0,
            ALLOCATABLE
        );
    }

    #[test]
    fn seed_estimate() {
        let mut k = global(15088.559321);
        k.mem_info = Some(MemInfo {
            free_pages: Some(26687),
            inactive_file_pages: Some(50),
            ..Default::default()
        });
        estimate(&mut k, &Eviction::default());
        assert_eq!(k.verdict.as_deref(), Some(BELOW_RADAR));
        assert_eq!(k.memory_available_estimate_bytes, Some(26737 * 4096));
    }
}
