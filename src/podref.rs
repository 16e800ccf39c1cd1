//! Pod identity from a memory cgroup path (`task_memcg`, `oom_memcg`).
//!
//! Pure string work: no filesystem access. Covers the kubelet's systemd and
//! cgroupfs drivers, containerd / CRI-O / docker / podman leaf names, the
//! systemd-driver-on-cgroupfs-runtime form (`...slice:cri-containerd:<id>`)
//! and any prefix from nesting (kind, LXC, `/system.slice/containerd.service`).

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Qos {
    BestEffort,
    Burstable,
    Guaranteed,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::BestEffort => "BestEffort",
            Qos::Burstable => "Burstable",
            Qos::Guaranteed => "Guaranteed",
        }
    }

    /// The oom_score_adj the kubelet gives this class, as a range.
    /// Critical pods and sandboxes get -997/-998 whatever their class.
    pub fn expected_score_adj(self) -> (i32, i32) {
        match self {
            Qos::BestEffort => (1000, 1000),
            Qos::Burstable => (2, 999),
            Qos::Guaranteed => (-997, -997),
        }
    }
}

impl fmt::Display for Qos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

/// What kind of cgroup the path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// A container of a pod.
    Container,
    /// CRI-O's conmon monitor of a container: part of the pod, not the container.
    Conmon,
    /// The pod-level cgroup itself.
    Pod,
    /// A QoS-class cgroup (`kubepods/burstable`).
    Qos,
    /// The kubepods cgroup (node allocatable).
    Kubepods,
    /// Not under kubepods at all.
    Host,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Container => "container",
            Scope::Conmon => "conmon",
            Scope::Pod => "pod",
            Scope::Qos => "qos",
            Scope::Kubepods => "kubepods",
            Scope::Host => "host",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PodRef {
    pub scope: Option<Scope>,
    pub qos: Option<Qos>,
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<Runtime>,
}

impl PodRef {
    fn host() -> Self {
        PodRef {
            scope: Some(Scope::Host),
            ..Default::default()
        }
    }
}

/// Decode a cgroup path. Never fails: an unknown shape is a host cgroup.
pub fn identify(path: &str) -> PodRef {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    // Skip nesting prefixes until the kubepods root.
    let Some(mut level) = segs.by_ref().find_map(kubepods_level) else {
        return PodRef::host();
    };
    let mut r = PodRef {
        scope: Some(Scope::Kubepods),
        ..Default::default()
    };
    loop {
        match level {
            Level::Kubepods => {}
            Level::Qos(q) => {
                r.scope = Some(Scope::Qos);
                r.qos = Some(q);
            }
            Level::Pod(q, uid, container) => {
                r.scope = Some(Scope::Pod);
                r.qos = Some(q.or(r.qos).unwrap_or(Qos::Guaranteed));
                r.pod_uid = Some(uid);
                if let Some(c) = container {
                    r.set_container(c);
                    return r;
                }
            }
            Level::Container(c) => {
                r.set_container(c);
                return r;
            }
        }
        let Some(l) = segs.next().and_then(|seg| next_level(&r, seg)) else {
            return r;
        };
        level = l;
    }
}

impl PodRef {
    fn set_container(&mut self, c: Container) {
        self.scope = Some(c.scope);
        self.runtime = c.runtime;
        self.container_id = c.id;
    }
}

struct Container {
    runtime: Option<Runtime>,
    id: Option<String>,
    scope: Scope,
}

enum Level {
    Kubepods,
    Qos(Qos),
    /// QoS when the systemd name spells it out; a container when the
    /// runtime appended it to the pod slice with colons.
    Pod(Option<Qos>, String, Option<Container>),
    Container(Container),
}

/// The first kubepods segment: `kubepods`, `kubepods.slice`,
/// `kubelet-kubepods.slice`, or a deeper systemd slice name when the path
/// skips levels (`kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>`).
fn kubepods_level(seg: &str) -> Option<Level> {
    if seg == "kubepods" {
        return Some(Level::Kubepods);
    }
    let (slice, tail) = split_slice(seg)?;
    let i = slice.find("kubepods")?;
    if i > 0 && !slice[..i].ends_with('-') {
        return None;
    }
    match (slice_level(&slice[i + "kubepods".len()..])?, tail) {
        (Level::Pod(q, uid, None), Some(t)) => Some(Level::Pod(q, uid, Some(colon_container(t)))),
        (l, _) => Some(l),
    }
}

/// `name.slice` or `name.slice:runtime:id` -> (name, tail).
fn split_slice(seg: &str) -> Option<(&str, Option<&str>)> {
    if let Some(name) = seg.strip_suffix(".slice") {
        return Some((name, None));
    }
    let i = seg.find(".slice:")?;
    Some((&seg[..i], Some(&seg[i + ".slice:".len()..])))
}

/// `cri-containerd:<id>`, as containerd writes it when the kubelet uses the
/// systemd driver but containerd itself uses cgroupfs.
fn colon_container(tail: &str) -> Container {
    let (runtime, id) = match tail.split_once(':') {
        Some((rt, id)) => (runtime_name(rt), hex_id(id)),
        None => (None, hex_id(tail)),
    };
    Container {
        runtime,
        id,
        scope: Scope::Container,
    }
}

fn runtime_name(s: &str) -> Option<Runtime> {
    match s {
        "cri-containerd" | "containerd" => Some(Runtime::Containerd),
        "crio" | "cri-o" => Some(Runtime::Crio),
        "docker" => Some(Runtime::Docker),
        "libpod" => Some(Runtime::Podman),
        _ => None,
    }
}

/// What follows `kubepods` in a systemd slice name.
fn slice_level(rest: &str) -> Option<Level> {
    if rest.is_empty() {
        return Some(Level::Kubepods);
    }
    let rest = rest.strip_prefix('-')?;
    let (qos, rest) = if let Some(r) = rest.strip_prefix("besteffort") {
        (Some(Qos::BestEffort), r)
    } else if let Some(r) = rest.strip_prefix("burstable") {
        (Some(Qos::Burstable), r)
    } else {
        (None, rest)
    };
    if rest.is_empty() {
        return qos.map(Level::Qos);
    }
    let rest = if qos.is_some() {
        rest.strip_prefix('-')?
    } else {
        rest
    };
    let uid = pod_uid(rest.strip_prefix("pod")?)?;
    Some(Level::Pod(qos.or(Some(Qos::Guaranteed)), uid, None))
}

fn next_level(r: &PodRef, seg: &str) -> Option<Level> {
    match r.scope? {
        Scope::Kubepods => cgroupfs_level(seg)
            .or_else(|| kubepods_level(seg).filter(|l| !matches!(l, Level::Kubepods))),
        Scope::Qos => match seg.strip_prefix("pod").and_then(pod_uid) {
            Some(uid) => Some(Level::Pod(r.qos, uid, None)),
            None => kubepods_level(seg).filter(|l| matches!(l, Level::Pod(..))),
        },
        Scope::Pod => Some(Level::Container(container_level(seg))),
        _ => None,
    }
}

fn cgroupfs_level(seg: &str) -> Option<Level> {
    match seg {
        "besteffort" => Some(Level::Qos(Qos::BestEffort)),
        "burstable" => Some(Level::Qos(Qos::Burstable)),
        _ => seg
            .strip_prefix("pod")
            .and_then(pod_uid)
            .map(|u| Level::Pod(Some(Qos::Guaranteed), u, None)),
    }
}

fn container_level(seg: &str) -> Container {
    let name = seg.strip_suffix(".scope").unwrap_or(seg);
    if let Some(id) = name.strip_prefix("crio-conmon-") {
        return Container {
            runtime: Some(Runtime::Crio),
            id: hex_id(id),
            scope: Scope::Conmon,
        };
    }
    for (prefix, rt) in [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ] {
        if let Some(id) = name.strip_prefix(prefix) {
            return Container {
                runtime: Some(rt),
                id: hex_id(id),
                scope: Scope::Container,
            };
        }
    }
    // cgroupfs leaves are the bare id, which does not name the runtime.
    Container {
        runtime: None,
        id: hex_id(name),
        scope: Scope::Container,
    }
}

/// A container id: 64 hex digits, lower-cased.
fn hex_id(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Normalise a pod UID: dashed 8-4-4-4-12 (systemd writes `_`), or the
/// 32 hex digits of a static pod.
fn pod_uid(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase().replace('_', "-");
    let b = s.as_bytes();
    let dashed = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let plain = b.len() == 32 && b.iter().all(|c| c.is_ascii_hexdigit());
    (dashed || plain).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "b5c977a23d9e75550f049867c1dcde53c5b4cd3b25d77364768bdde5ead50e98";
    const UID: &str = "569f0038-b213-4294-a1e2-4dcc5b2c8d9e";

    fn check(
        path: &str,
        scope: Scope,
        qos: Option<Qos>,
        uid: Option<&str>,
        id: Option<&str>,
        rt: Option<Runtime>,
    ) {
        let r = identify(path);
        assert_eq!(r.scope, Some(scope), "{path}");
        assert_eq!(r.qos, qos, "{path}");
        assert_eq!(r.pod_uid.as_deref(), uid, "{path}");
        assert_eq!(r.container_id.as_deref(), id, "{path}");
        assert_eq!(r.runtime, rt, "{path}");
    }

    #[test]
    fn systemd_driver_containerd() {
        let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice/cri-containerd-{ID}.scope");
        check(
            &p,
            Scope::Container,
            Some(Qos::Burstable),
            Some(UID),
            Some(ID),
            Some(Runtime::Containerd),
        );
    }

    #[test]
    fn systemd_driver_guaranteed_crio_and_docker() {
        let p = format!("/kubepods.slice/kubepods-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice/crio-{ID}.scope");
        check(
            &p,
            Scope::Container,
            Some(Qos::Guaranteed),
            Some(UID),
            Some(ID),
            Some(Runtime::Crio),
        );
        let p = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice/docker-{ID}.scope");
        check(
            &p,
            Scope::Container,
            Some(Qos::BestEffort),
            Some(UID),
            Some(ID),
            Some(Runtime::Docker),
        );
    }

    #[test]
    fn crio_conmon_is_not_the_container() {
        let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice/crio-conmon-{ID}.scope");
        check(
            &p,
            Scope::Conmon,
            Some(Qos::Burstable),
            Some(UID),
            Some(ID),
            Some(Runtime::Crio),
        );
    }

    #[test]
    fn cgroupfs_driver() {
        check(
            &format!("/kubepods/burstable/pod{UID}/{ID}"),
            Scope::Container,
            Some(Qos::Burstable),
            Some(UID),
            Some(ID),
            None,
        );
        check(
            &format!("/kubepods/pod{UID}/{ID}"),
            Scope::Container,
            Some(Qos::Guaranteed),
            Some(UID),
            Some(ID),
            None,
        );
        check(
            &format!("/kubepods/besteffort/pod{UID}"),
            Scope::Pod,
            Some(Qos::BestEffort),
            Some(UID),
            None,
            None,
        );
    }

    #[test]
    fn seed_driver_mismatch_form() {
        let p = format!("/system.slice/containerd.service/kubepods-besteffort-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice:cri-containerd:{ID}");
        check(
            &p,
            Scope::Container,
            Some(Qos::BestEffort),
            Some(UID),
            Some(ID),
            Some(Runtime::Containerd),
        );
    }

    #[test]
    fn nesting_prefixes() {
        let p = format!("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod569f0038_b213_4294_a1e2_4dcc5b2c8d9e.slice/cri-containerd-{ID}.scope");
        check(
            &p,
            Scope::Container,
            Some(Qos::BestEffort),
            Some(UID),
            Some(ID),
            Some(Runtime::Containerd),
        );
        let p = format!("/lxc.payload.node1/kubepods/burstable/pod{UID}/{ID}");
        check(
            &p,
            Scope::Container,
            Some(Qos::Burstable),
            Some(UID),
            Some(ID),
            None,
        );
    }

    #[test]
    fn static_pod_uid_has_no_dashes() {
        let p = format!("/kubepods/burstable/pod6A5B1E2C3D4F5a6b7c8d9e0f1a2b3c4d/{ID}");
        check(
            &p,
            Scope::Container,
            Some(Qos::Burstable),
            Some("6a5b1e2c3d4f5a6b7c8d9e0f1a2b3c4d"),
            Some(ID),
            None,
        );
    }

    #[test]
    fn qos_and_kubepods_levels() {
        check("/kubepods", Scope::Kubepods, None, None, None, None);
        check("/kubepods.slice", Scope::Kubepods, None, None, None, None);
        check(
            "/kubepods/burstable",
            Scope::Qos,
            Some(Qos::Burstable),
            None,
            None,
            None,
        );
        check(
            "/kubepods.slice/kubepods-besteffort.slice",
            Scope::Qos,
            Some(Qos::BestEffort),
            None,
            None,
            None,
        );
    }

    #[test]
    fn host_cgroups() {
        for p in [
            "/",
            "",
            "/system.slice/foo.service",
            "/user.slice/user-0.slice/session-1.scope",
            &format!("/docker/{ID}"),
            "/runtime.slice/containerd.service",
            "/podruntime.slice/kubelet.service",
            "/mykubepods/x",
            "/kubepodsX/burstable",
        ] {
            check(p, Scope::Host, None, None, None, None);
        }
    }

    #[test]
    fn unknown_leaf_under_pod_is_a_container_without_id() {
        check(
            &format!("/kubepods/burstable/pod{UID}/ctr1"),
            Scope::Container,
            Some(Qos::Burstable),
            Some(UID),
            None,
            None,
        );
        let p = format!("/kubepods/burstable/pod{UID}/libpod-{ID}");
        check(
            &p,
            Scope::Container,
            Some(Qos::Burstable),
            Some(UID),
            Some(ID),
            Some(Runtime::Podman),
        );
    }

    #[test]
    fn hostile_paths_do_not_panic() {
        for p in [
            "/kubepods/pod",
            "/kubepods.slice/kubepods-pod.slice",
            "kubepods-.slice:",
            "/kubepods/burstable/podZZZ",
            "/kubepods-besteffort-pod\u{0}.slice:x:y",
            "/kubepods/burstable/pod\u{e9}\u{e9}/x",
        ] {
            let _ = identify(p);
        }
    }
}
