//! The oomwatch image, built from the root Dockerfile with buildah (no
//! daemon), run under containerd with the host paths mounted: privileged as
//! daemonset.yaml runs it, and least-privileged (only CAP_SYSLOG, read-only
//! root filesystem, read-only mounts, /dev/kmsg passed as a device). Both
//! must serve /metrics from the real kernel log. Root, containerd, buildah.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const WORK: &str = "/tmp/oomwatch-cri";
/// containerd's default capabilities, all dropped in the least-privileged run.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

fn sh(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let o = Command::new("bash").arg(path).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn ctr(sock: &str, args: &[&str]) -> std::process::Output {
    Command::new("ctr")
        .args(["-a", sock, "-n", "k8s.io"])
        .args(args)
        .output()
        .unwrap()
}

/// Run the image detached with the host paths; the port it serves on.
fn start(sock: &str, name: &str, port: u16, extra: &[String], state: &Path) {
    let _ = ctr(sock, &["task", "kill", "-s", "KILL", name]);
    let _ = ctr(sock, &["task", "rm", name]);
    let _ = ctr(sock, &["containers", "rm", name]);
    let mut args: Vec<String> = ["run", "-d", "--net-host"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().cloned());
    for m in [
        "type=bind,src=/proc,dst=/host/proc,options=rbind:ro",
        "type=bind,src=/sys/fs/cgroup,dst=/host/sys/fs/cgroup,options=rbind:ro",
    ] {
        args.extend(["--mount".into(), m.into()]);
    }
    args.extend([
        "--mount".into(),
        format!(
            "type=bind,src={},dst=/state,options=rbind:rw",
            state.display()
        ),
    ]);
    args.extend([
        "localhost/oomwatch:test".into(),
        name.into(),
        "/oomwatch".into(),
        "run".into(),
    ]);
    args.extend(
        [
            "--proc=/host/proc",
            "--cgroup-root=/host/sys/fs/cgroup",
            "--state-dir=/state",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push(format!("--listen=127.0.0.1:{port}"));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ctr(sock, &a);
    assert!(
        o.status.success(),
        "ctr run {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn stop(sock: &str, name: &str) {
    let _ = ctr(sock, &["task", "kill", "-s", "KILL", name]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = ctr(sock, &["task", "rm", name]);
    let _ = ctr(sock, &["containers", "rm", name]);
}

fn serves_metrics(port: u16) -> String {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(20) {
        // Served at once; the kernel ring is read just after.
        let m = http_get(port, "/metrics").unwrap_or_default();
        if sample(&m, "oomwatch_kmsg_records_total").unwrap_or(0.0) > 0.0 {
            return m;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("no /metrics with kernel records read on port {port}");
}

#[test]
fn the_image_runs_privileged_and_least_privileged() {
    if !require_real_kernel("the_image_runs_privileged_and_least_privileged") {
        return;
    }
    let _one_at_a_time = serial();
    let setup = sh("tests/real/cri/setup.sh", &[WORK]);
    let sock = setup
        .lines()
        .find_map(|l| l.strip_prefix("SOCK="))
        .unwrap()
        .to_string();
    sh("tests/real/oomwatch-image.sh", &[WORK, &sock]);
    let tmp = Scratch::new("image");

    let st = tmp.0.join("priv");
    std::fs::create_dir_all(&st).unwrap();
    let port = free_port();
    start(&sock, "oomwatch-priv", port, &["--privileged".into()], &st);
    let m = serves_metrics(port);
    assert!(
        sample(&m, "oomwatch_kmsg_records_total").unwrap_or(0.0) > 0.0,
        "{m}"
    );
    assert!(
        sample(&m, "oomwatch_memory_available_bytes").is_some(),
        "{m}"
    );
    stop(&sock, "oomwatch-priv");

    let st = tmp.0.join("least");
    std::fs::create_dir_all(&st).unwrap();
    let port = free_port();
    let mut lp: Vec<String> = DEFAULT_CAPS
        .iter()
        .flat_map(|c| ["--cap-drop".to_string(), format!("CAP_{c}")])
        .collect();
    lp.extend(
        [
            "--cap-add",
            "CAP_SYSLOG",
            "--device",
            "/dev/kmsg",
            "--read-only",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    start(&sock, "oomwatch-least", port, &lp, &st);
    let m = serves_metrics(port);
    assert!(
        sample(&m, "oomwatch_kmsg_records_total").unwrap_or(0.0) > 0.0,
        "{m}"
    );
    let tasks = String::from_utf8_lossy(&ctr(&sock, &["task", "ls"]).stdout).to_string();
    let pid = tasks
        .lines()
        .find(|l| l.starts_with("oomwatch-least"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(
        eff.ends_with("0000000400000000"),
        "only CAP_SYSLOG (bit 34): {eff}"
    );
    assert!(
        st.join("state.json").exists(),
        "the state dir is the one writable path"
    );
    stop(&sock, "oomwatch-least");
}
