//! What a user deploys: daemonset.yaml, the eater manifests, the monitoring
//! manifests. Validated offline against the Kubernetes API schemas
//! (kubernetes-validate, strict) and yamllint, and read for what matters.

mod common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn run(name: &str, args: &[&str]) -> Option<std::process::Output> {
    common::tool(
        name,
        args,
        &root(),
        None,
        "pip install kubernetes-validate yamllint",
    )
}

fn docs(file: &str) -> Vec<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn manifests_validate_against_the_api_schemas() {
    let files = [
        "daemonset.yaml",
        "eater/k8s/besteffort.yaml",
        "eater/k8s/burstable.yaml",
        "eater/k8s/guaranteed.yaml",
    ];
    let mut args = vec!["--strict", "-k", "1.29.0"];
    args.extend(files);
    if let Some(o) = run("kubernetes-validate", &args) {
        let out =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{out}");
        assert_eq!(out.matches(" passed for resource ").count(), 7, "{out}");
    }
}

#[test]
fn yamllint_is_clean() {
    if let Some(o) = run("yamllint", &["daemonset.yaml", "eater/k8s", "grafana"]) {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn eater_deployments_have_the_seed_qos_classes() {
    let res =
        |f: &str| docs(f)[0]["spec"]["template"]["spec"]["containers"][0]["resources"].clone();
    assert!(
        res("eater/k8s/besteffort.yaml").is_null(),
        "BestEffort: no resources"
    );
    let b = res("eater/k8s/burstable.yaml");
    assert_eq!(
        (
            b["requests"]["memory"].as_str(),
            b["requests"]["cpu"].as_str()
        ),
        (Some("100Mi"), Some("100m"))
    );
    assert!(b["limits"].is_null(), "Burstable: no limits");
    let g = res("eater/k8s/guaranteed.yaml");
    assert_eq!(g["requests"], g["limits"], "Guaranteed: requests = limits");
    assert_eq!(g["limits"]["memory"].as_str(), Some("1005Mi"));
}

#[test]
fn the_daemonset_is_what_the_design_asks() {
    let all = docs("daemonset.yaml");
    let kinds: Vec<_> = all
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["Namespace", "ServiceAccount", "DaemonSet", "Service"]
    );
    assert_eq!(
        all[1]["automountServiceAccountToken"].as_bool(),
        Some(false)
    );
    let spec = &all[2]["spec"]["template"]["spec"];
    assert_eq!(spec["automountServiceAccountToken"].as_bool(), Some(false));
    assert_eq!(
        spec["priorityClassName"].as_str(),
        Some("system-node-critical")
    );
    assert_eq!(spec["tolerations"][0]["operator"].as_str(), Some("Exists"));
    let c = &spec["containers"][0];
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    assert!(
        c["resources"]["limits"]["memory"].is_string()
            && c["resources"]["requests"]["cpu"].is_string()
    );
    let mounts: Vec<_> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    for p in [
        "/dev/kmsg",
        "/host/proc",
        "/host/sys/fs/cgroup",
        "/var/log/pods",
        "/var/log/containers",
        "/var/lib/kubelet/config.yaml",
        "/var/lib/oomwatch",
    ] {
        assert!(mounts.iter().any(|m| m == p), "{p} not mounted");
    }
    for m in c["volumeMounts"].as_sequence().unwrap() {
        let ro = m["readOnly"].as_bool() == Some(true);
        assert_eq!(
            ro,
            m["mountPath"] != "/var/lib/oomwatch",
            "{m:?}: only the state dir is writable"
        );
    }
    let ann = &all[2]["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"].as_str(), Some("true"));
}
