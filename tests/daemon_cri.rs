//! containerd with its CRI plugin: real pod sandboxes with kubepods cgroup
//! parents, OOM-killed by the kernel. oomwatch must name namespace, pod and
//! container exactly as CRI reports them and agree with ContainerStatus.
//! Needs root, cgroup v1, containerd, runc, buildah and Python grpcio (CI
//! installs them; tests/real/cri/setup.sh starts a private containerd).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const WORK: &str = "/tmp/oomwatch-cri";

fn setup() -> Option<(String, String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/cri/setup.sh");
    let out = Command::new("bash").arg(&script).arg(WORK).output().ok()?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CRI setup failed in CI: {why}"
        );
        eprintln!("SKIPPED CRI test: setup failed: {why}");
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    Some((get("SOCK")?, get("TASKS")?, get("LOGS")?))
}

fn cri(sock: &str, logs: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/cri/cri_pod.py");
    let out = Command::new("python3")
        .arg(script)
        .args([WORK, sock, logs])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cri_pod.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Remove a pod's cgroup in every v1 hierarchy runc touched.
fn remove_pod_cgroups(parent: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join(parent.trim_start_matches('/'));
        if d.is_dir() {
            let _ = Command::new("find")
                .arg(&d)
                .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                .status();
        }
    }
}

#[test]
fn cri_pods_are_named_as_cri_reports_them() {
    if !require_real_kernel("cri_pods_are_named_as_cri_reports_them") {
        return;
    }
    let _one_at_a_time = serial();
    let Some((sock, tasks, logs)) = setup() else {
        return;
    };
    let state = Scratch::new("cri-state");
    let d = Daemon::start(Path::new(WORK), &state.0, &["--runtime-state-dir", &tasks]);
    wait_out_rate_limit();
    let mut pods = Vec::new();
    for (qos, class) in [
        ("besteffort", "BestEffort"),
        ("burstable", "Burstable"),
        ("guaranteed", "Guaranteed"),
    ] {
        let pod = format!("eater-{qos}-{}", std::process::id());
        let st = cri(&sock, &logs, &["run", qos, "demo", &pod, "eater"]);
        assert_eq!(st["reason"], "OOMKilled", "{st}");
        assert_eq!(st["exit_code"], 137, "{st}");
        pods.push((st, class));
    }
    // The eater image, built from eater/Dockerfile, OOM-killed in its pod.
    let pod = format!("eater-image-{}", std::process::id());
    let st = cri(
        &sock,
        &logs,
        &["run", "besteffort", "demo", &pod, "eater", "eater"],
    );
    assert_eq!(
        (st["reason"].as_str(), st["exit_code"].as_i64()),
        (Some("OOMKilled"), Some(137)),
        "{st}"
    );
    d.wait_for(
        || {
            d.log()
                .contains(&format!("demo/{pod} container eater (BestEffort)"))
                && d.log().contains("(eater)")
        },
        "the eater image's kill",
    );
    pods.push((st, "BestEffort"));
    for (st, class) in &pods {
        let (ns, pod, ctr) = (
            st["namespace"].as_str().unwrap(),
            st["pod"].as_str().unwrap(),
            st["container"].as_str().unwrap(),
        );
        let want = format!("{ns}/{pod} container {ctr} ({class})");
        d.wait_for(|| d.log().contains(&want), &want);
        let line = d
            .log()
            .lines()
            .find(|l| l.contains(&want))
            .unwrap()
            .to_string();
        assert!(
            line.contains(st["cgroup_parent"].as_str().unwrap()),
            "{line}"
        );
        let id = st["container_id"].as_str().unwrap();
        assert!(
            line.contains(id),
            "the kernel's path names container {id}: {line}"
        );
        let m = d.get("/metrics").unwrap();
        let series = format!("oomwatch_oom_kills_total{{namespace=\"{ns}\",pod=\"{pod}\",container=\"{ctr}\",qos_class=\"{class}\",constraint=\"memcg\"}}");
        assert_eq!(sample(&m, &series), Some(1.0), "{series}\n{m}");
    }
    assert_eq!(d.stop(), Some(0));
    for (st, _) in &pods {
        cri(
            &sock,
            &logs,
            &["cleanup", st["sandbox_id"].as_str().unwrap()],
        );
        remove_pod_cgroups(st["cgroup_parent"].as_str().unwrap());
    }
}
