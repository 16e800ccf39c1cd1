//! What survives a restart: the boot id, the last kmsg record handled and
//! every counter. The metrics are rendered from this, so a restart on the
//! same boot continues them; a new boot id starts fresh.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Label values of one kill series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KillLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub qos_class: String,
    pub constraint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KillSeries {
    pub labels: KillLabels,
    pub count: u64,
    /// Unix seconds of the last kill.
    pub last_kill: f64,
    /// The pod's cgroup, to tell when the pod is gone.
    #[serde(default)]
    pub pod_cgroup: Option<String>,
    /// Unix seconds since the pod was first seen gone.
    #[serde(default)]
    pub gone_since: Option<f64>,
}

/// Upper bounds of the victim size histogram, in bytes: 16 MiB to 64 GiB.
pub const RSS_BUCKETS: [f64; 13] = [
    16.0 * MI,
    32.0 * MI,
    64.0 * MI,
    128.0 * MI,
    256.0 * MI,
    512.0 * MI,
    1024.0 * MI,
    2048.0 * MI,
    4096.0 * MI,
    8192.0 * MI,
    16384.0 * MI,
    32768.0 * MI,
    65536.0 * MI,
];
const MI: f64 = 1048576.0;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Per bucket, not cumulative; one more than RSS_BUCKETS for +Inf.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        if self.buckets.len() != RSS_BUCKETS.len() + 1 {
            self.buckets = vec![0; RSS_BUCKETS.len() + 1];
        }
        let i = RSS_BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(RSS_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub boot_id: String,
    /// Records up to this sequence number were counted.
    pub handled_seq: Option<u64>,
    pub records: u64,
    pub lost: u64,
    pub incomplete: u64,
    pub unattributed: u64,
    /// Lines that could not be read: not a record, or an OOM line whose
    /// fields could not be parsed.
    #[serde(default)]
    pub unreadable: u64,
    pub kills: Vec<KillSeries>,
    /// By QoS class label.
    pub victim_rss: BTreeMap<String, Histogram>,
    /// By verdict (why the kubelet did not evict).
    #[serde(default)]
    pub verdicts: BTreeMap<String, u64>,
    /// Per-cgroup oom_kill counts accounted for (see attribution.rs): kills
    /// that happen while oomwatch is down can still be attributed.
    #[serde(default)]
    pub oom_kill_model: BTreeMap<String, u64>,
}

impl Counters {
    pub fn count_kill(&mut self, labels: KillLabels, at: f64, pod_cgroup: Option<String>) {
        match self.kills.iter_mut().find(|s| s.labels == labels) {
            Some(s) => {
                s.count += 1;
                s.last_kill = s.last_kill.max(at);
                s.gone_since = None;
                if pod_cgroup.is_some() {
                    s.pod_cgroup = pod_cgroup;
                }
            }
            None => self.kills.push(KillSeries {
                labels,
                count: 1,
                last_kill: at,
                pod_cgroup,
                gone_since: None,
            }),
        }
    }

    pub fn total_kills(&self) -> u64 {
        self.kills.iter().map(|s| s.count).sum()
    }

    /// Drop series of pods gone for longer than `forget_after` seconds.
    /// `present` says whether a pod cgroup still exists.
    pub fn forget(&mut self, now: f64, forget_after: f64, present: impl Fn(&str) -> bool) -> usize {
        let before = self.kills.len();
        for s in &mut self.kills {
            match &s.pod_cgroup {
                Some(cg) if !present(cg) => {
                    s.gone_since.get_or_insert(now);
                }
                _ => s.gone_since = None,
            }
        }
        self.kills
            .retain(|s| s.gone_since.is_none_or(|g| now - g < forget_after));
        before - self.kills.len()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state dir {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("cannot write state file {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

pub struct Store {
    path: PathBuf,
}

pub enum Loaded {
    /// Same boot: continue.
    Resumed(Counters),
    /// A reboot since the state was written, or no state yet.
    Fresh(Counters, &'static str),
}

impl Store {
    pub fn new(dir: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| StateError::Dir(dir.to_path_buf(), e))?;
        Ok(Store {
            path: dir.join("state.json"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self, boot_id: &str) -> Loaded {
        let fresh = |why| {
            Loaded::Fresh(
                Counters {
                    boot_id: boot_id.to_string(),
                    ..Default::default()
                },
                why,
            )
        };
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return fresh("no state file yet");
        };
        match serde_json::from_str::<Counters>(&text) {
            Ok(c) if c.boot_id == boot_id => Loaded::Resumed(c),
            Ok(_) => fresh("the node rebooted since the state was written"),
            Err(_) => fresh("the state file was unreadable"),
        }
    }

    /// Write atomically: a crash leaves the old file or the new one. No
    /// fsync: a process crash keeps the page cache, and after a machine
    /// crash the boot id changes and the state is not used anyway.
    pub fn save(&self, c: &Counters) -> Result<(), StateError> {
        let tmp = self.path.with_extension("json.tmp");
        let err = |e| StateError::Write(self.path.clone(), e);
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&serde_json::to_vec(c).unwrap_or_default())
            .map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pod: &str) -> KillLabels {
        KillLabels {
            namespace: "d".into(),
            pod: pod.into(),
            container: "c".into(),
            qos_class: "BestEffort".into(),
            constraint: "global".into(),
        }
    }

    #[test]
    fn resume_on_same_boot_fresh_on_reboot() {
        let dir = std::env::temp_dir().join(format!("oomwatch-state-{}", std::process::id()));
        let s = Store::new(&dir).unwrap();
        assert!(matches!(
            s.load("b1"),
            Loaded::Fresh(_, "no state file yet")
        ));
        let mut c = Counters {
            boot_id: "b1".into(),
            handled_seq: Some(42),
            ..Default::default()
        };
        c.count_kill(labels("p"), 10.0, None);
        s.save(&c).unwrap();
        match s.load("b1") {
            Loaded::Resumed(r) => assert_eq!(r, c),
            _ => panic!("not resumed"),
        }
        assert!(matches!(
            s.load("b2"),
            Loaded::Fresh(_, "the node rebooted since the state was written")
        ));
        std::fs::write(s.path(), "{garbage").unwrap();
        assert!(matches!(
            s.load("b1"),
            Loaded::Fresh(_, "the state file was unreadable")
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forget_pods_gone_long_enough() {
        let mut c = Counters::default();
        c.count_kill(labels("gone"), 1.0, Some("/kubepods/pod-gone".into()));
        c.count_kill(labels("here"), 1.0, Some("/kubepods/pod-here".into()));
        c.count_kill(labels("host"), 1.0, None);
        let present = |cg: &str| cg.ends_with("here");
        assert_eq!(c.forget(100.0, 60.0, present), 0);
        assert_eq!(c.forget(159.0, 60.0, present), 0);
        assert_eq!(c.forget(161.0, 60.0, present), 1);
        assert_eq!(c.kills.len(), 2);
    }

    #[test]
    fn histogram_buckets() {
        let mut h = Histogram::default();
        h.observe(10.0 * MI);
        h.observe(1000.0 * MI);
        h.observe(1e15);
        assert_eq!(
            (h.buckets[0], h.buckets[6], h.buckets[13], h.count),
            (1, 1, 1, 3)
        );
    }
}
