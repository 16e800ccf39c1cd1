//! Namespace, pod and container names without the Kubernetes API: from
//! `/var/log/pods/<ns>_<pod>_<uid>/<container>/`, from
//! `/var/log/containers/<pod>_<ns>_<container>-<id>.log`, and from the
//! runtime's state (`config.json` annotations of containerd and CRI-O).
//! What was seen is cached (bounded), so a pod deleted right after its kill
//! is still named.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodName {
    pub namespace: String,
    pub pod: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

/// `<ns>_<pod>_<uid>`: names are DNS labels/subdomains, so they hold no `_`.
pub fn parse_pod_dir(name: &str) -> Option<(PodName, String)> {
    let mut it = name.split('_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((
        PodName {
            namespace: ns.into(),
            pod: pod.into(),
        },
        uid.to_ascii_lowercase(),
    ))
}

/// `<pod>_<ns>_<container>-<64 hex id>.log` -> (pod, container name, id).
/// The kubelet may cut a long name at 255 bytes: then the id is lost.
pub fn parse_container_log(name: &str) -> Option<(PodName, String, String)> {
    let stem = name.strip_suffix(".log")?;
    let (pod, rest) = stem.split_once('_')?;
    let (ns, rest) = rest.split_once('_')?;
    let (container, id) = rest.rsplit_once('-')?;
    let ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| {
        (
            PodName {
                namespace: ns.into(),
                pod: pod.into(),
            },
            container.into(),
            id.to_ascii_lowercase(),
        )
    })
}

/// Annotations of an OCI `config.json` written by containerd's CRI plugin or CRI-O.
pub fn parse_runtime_config(
    json: &str,
) -> Option<(Option<PodName>, Option<String>, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        annotations: HashMap<String, String>,
    }
    let c: Config = serde_json::from_str(json).ok()?;
    let get = |keys: &[&str]| keys.iter().find_map(|k| c.annotations.get(*k).cloned());
    let ns = get(&[
        "io.kubernetes.cri.sandbox-namespace",
        "io.kubernetes.pod.namespace",
    ]);
    let pod = get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]);
    let container = get(&[
        "io.kubernetes.cri.container-name",
        "io.kubernetes.container.name",
    ]);
    let uid = get(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]);
    let pn = ns
        .zip(pod)
        .map(|(namespace, pod)| PodName { namespace, pod });
    Some((pn, container, uid))
}

/// A map that forgets its oldest entries past `cap`.
#[derive(Debug)]
struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    cap: usize,
}

impl<V> Bounded<V> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    fn insert(&mut self, k: String, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get(&self, k: &str) -> Option<&V> {
        self.map.get(k)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

pub struct Resolver {
    pod_logs: PathBuf,
    container_logs: PathBuf,
    runtime_dirs: Vec<PathBuf>,
    pods: Bounded<PodName>,
    /// container id -> (pod uid if known, container name)
    containers: Bounded<(Option<String>, String)>,
    /// pod uid -> container names seen in its log dir
    pod_containers: Bounded<Vec<String>>,
}

pub const CACHE_ENTRIES: usize = 4096;

impl Resolver {
    pub fn new(pod_logs: PathBuf, container_logs: PathBuf, runtime_dirs: Vec<PathBuf>) -> Self {
        Resolver {
            pod_logs,
            container_logs,
            runtime_dirs,
            pods: Bounded::new(CACHE_ENTRIES),
            containers: Bounded::new(CACHE_ENTRIES),
            pod_containers: Bounded::new(CACHE_ENTRIES),
        }
    }

    /// What each source can be read for, for the start-up report.
    pub fn sources(&self) -> Vec<(PathBuf, bool)> {
        let mut v = vec![
            (self.pod_logs.clone(), self.pod_logs.is_dir()),
            (self.container_logs.clone(), self.container_logs.is_dir()),
        ];
        v.extend(self.runtime_dirs.iter().map(|d| (d.clone(), d.is_dir())));
        v
    }

    /// Read the log directories: cheap (two readdirs), run periodically and
    /// before naming a kill.
    pub fn scan(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.pod_logs) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some((pn, uid)) = name.to_str().and_then(parse_pod_dir) else {
                    continue;
                };
                if self.pods.get(&uid).is_none() {
                    let ctrs = std::fs::read_dir(e.path())
                        .map(|r| {
                            r.flatten()
                                .filter_map(|c| c.file_name().into_string().ok())
                                .collect()
                        })
                        .unwrap_or_default();
                    self.pod_containers.insert(uid.clone(), ctrs);
                    self.pods.insert(uid, pn);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.container_logs) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some((pn, container, id)) = name.to_str().and_then(parse_container_log) else {
                    continue;
                };
                if self.containers.get(&id).is_none() {
                    let uid = self.uid_of(&pn);
                    self.containers.insert(id, (uid, container));
                }
            }
        }
    }

    fn uid_of(&self, pn: &PodName) -> Option<String> {
        self.pods
            .map
            .iter()
            .find(|(_, v)| *v == pn)
            .map(|(k, _)| k.clone())
    }

    /// Names for a pod UID and container id, from the cache, then the log
    /// directories, then the runtime's state.
    pub fn lookup(&mut self, pod_uid: Option<&str>, container_id: Option<&str>) -> Names {
        let mut n = self.cached(pod_uid, container_id);
        if n.pod.is_none() || (container_id.is_some() && n.container.is_none()) {
            self.scan();
            n = self.cached(pod_uid, container_id);
        }
        if let (Some(id), true) = (container_id, n.pod.is_none() || n.container.is_none()) {
            self.read_runtime_state(id);
            n = self.cached(pod_uid, container_id);
        }
        n
    }

    fn cached(&self, pod_uid: Option<&str>, container_id: Option<&str>) -> Names {
        let mut n = Names::default();
        if let Some(p) = pod_uid.and_then(|u| self.pods.get(u)) {
            n.namespace = Some(p.namespace.clone());
            n.pod = Some(p.pod.clone());
        }
        if let Some((_, c)) = container_id.and_then(|id| self.containers.get(id)) {
            n.container = Some(c.clone());
        } else if let Some(only) = pod_uid
            .and_then(|u| self.pod_containers.get(u))
            .filter(|c| c.len() == 1)
        {
            // A pod with one container: the victim's container is that one.
            n.container = only.first().cloned();
        }
        n
    }

    fn read_runtime_state(&mut self, id: &str) {
        for dir in &self.runtime_dirs {
            for candidate in [
                dir.join(id).join("config.json"),
                dir.join(id).join("userdata").join("config.json"),
            ] {
                let Ok(text) = std::fs::read_to_string(&candidate) else {
                    continue;
                };
                let Some((pn, container, uid)) = parse_runtime_config(&text) else {
                    continue;
                };
                if let (Some(uid), Some(pn)) = (uid.clone(), pn) {
                    self.pods.insert(uid.to_ascii_lowercase(), pn);
                }
                if let Some(c) = container {
                    self.containers.insert(id.to_string(), (uid, c));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "b5c977a23d9e75550f049867c1dcde53c5b4cd3b25d77364768bdde5ead50e98";

    #[test]
    fn pod_dirs() {
        let (p, uid) = parse_pod_dir(
            "default_besteffort-657f6c859c-bmzds_569f0038-b213-4294-a1e2-4dcc5b2c8d9e",
        )
        .unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.pod.as_str(), uid.as_str()),
            (
                "default",
                "besteffort-657f6c859c-bmzds",
                "569f0038-b213-4294-a1e2-4dcc5b2c8d9e"
            )
        );
        assert!(parse_pod_dir("a_b").is_none());
        assert!(parse_pod_dir("a_b_c_d").is_none());
        assert!(parse_pod_dir("__").is_none());
    }

    #[test]
    fn container_logs() {
        let (p, c, id) = parse_container_log(&format!(
            "besteffort-657f6c859c-bmzds_default_eater-{ID}.log"
        ))
        .unwrap();
        assert_eq!(
            (
                p.pod.as_str(),
                p.namespace.as_str(),
                c.as_str(),
                id.as_str()
            ),
            ("besteffort-657f6c859c-bmzds", "default", "eater", ID)
        );
        assert!(parse_container_log("cut_default_eater-b5c977a23d9e7555.log").is_none());
        assert!(parse_container_log("x.log").is_none());
    }

    #[test]
    fn runtime_annotations() {
        let j = r#"{"ociVersion":"1.0","annotations":{"io.kubernetes.cri.container-name":"eater","io.kubernetes.cri.sandbox-name":"be-1","io.kubernetes.cri.sandbox-namespace":"default","io.kubernetes.cri.sandbox-uid":"u-1"}}"#;
        let (p, c, u) = parse_runtime_config(j).unwrap();
        assert_eq!(p.unwrap().pod, "be-1");
        assert_eq!((c.as_deref(), u.as_deref()), (Some("eater"), Some("u-1")));
        let j = r#"{"annotations":{"io.kubernetes.container.name":"x","io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"n","io.kubernetes.pod.uid":"U"}}"#;
        assert_eq!(parse_runtime_config(j).unwrap().1.as_deref(), Some("x"));
        assert!(parse_runtime_config("{not json").is_none());
    }

    #[test]
    fn bounded_cache_forgets_oldest() {
        let mut b = Bounded::new(2);
        b.insert("a".into(), 1);
        b.insert("b".into(), 2);
        b.insert("c".into(), 3);
        assert_eq!((b.get("a"), b.get("c"), b.len()), (None, Some(&3), 2));
    }

    #[test]
    fn names_from_a_log_tree() {
        let d = std::env::temp_dir().join(format!("oomwatch-names-{}", std::process::id()));
        let uid = "569f0038-b213-4294-a1e2-4dcc5b2c8d9e";
        std::fs::create_dir_all(d.join(format!("pods/default_be-1_{uid}/eater"))).unwrap();
        std::fs::create_dir_all(d.join("containers")).unwrap();
        std::fs::write(
            d.join(format!("containers/be-1_default_eater-{ID}.log")),
            "",
        )
        .unwrap();
        let mut r = Resolver::new(
            d.join("pods"),
            d.join("containers"),
            vec![d.join("missing")],
        );
        let n = r.lookup(Some(uid), Some(ID));
        assert_eq!(
            (
                n.namespace.as_deref(),
                n.pod.as_deref(),
                n.container.as_deref()
            ),
            (Some("default"), Some("be-1"), Some("eater"))
        );
        std::fs::remove_dir_all(&d).unwrap();
        // Gone from disk, still named from the cache.
        let n = r.lookup(Some(uid), Some(ID));
        assert_eq!(n.pod.as_deref(), Some("be-1"));
    }
}
