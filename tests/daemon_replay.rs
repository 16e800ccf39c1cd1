//! `oomwatch run --kmsg FILE`: a fixed capture replayed through the daemon.
//! Golden log and /metrics (UPDATE_GOLDEN=1 rewrites), promtool, bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/daemon")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("oomwatch-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn oomwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oomwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn replay(kmsg: &Path, tmp: &Path, extra: &[&str]) -> (Output, String) {
    replay_with(kmsg, tmp, &fixtures().join("names/pods"), extra)
}

fn replay_with(kmsg: &Path, tmp: &Path, pods: &Path, extra: &[&str]) -> (Output, String) {
    let names = fixtures().join("names");
    let metrics = tmp.join("metrics.txt");
    let mut args = vec![
        "run".to_string(),
        "--kmsg".into(),
        kmsg.display().to_string(),
        "--state-dir".into(),
        tmp.join("state").display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--boot-time".into(),
        "1730000000".into(),
        "--node-name".into(),
        "node2".into(),
        "--pod-logs-dir".into(),
        pods.display().to_string(),
        "--container-logs-dir".into(),
        names.join("containers").display().to_string(),
        "--runtime-state-dir".into(),
        names.join("runtime").display().to_string(),
        "--write-metrics".into(),
        metrics.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_oomwatch"))
        .args(&args)
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&metrics).unwrap_or_default())
}

/// The oomwatch_* part: process metrics differ from run to run.
fn ours(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.contains("oomwatch_"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn golden(name: &str, got: &str) {
    let p = fixtures().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&p, got).unwrap();
    }
    let want = std::fs::read_to_string(&p).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "{} differs (UPDATE_GOLDEN=1 to rewrite)",
        p.display()
    );
}

#[test]
fn replay_matches_golden_log_and_metrics() {
    let tmp = scratch("golden");
    let (out, metrics) = replay(&fixtures().join("replay.kmsg"), &tmp, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    golden("replay.log", &String::from_utf8_lossy(&out.stdout));
    golden("replay.metrics", &ours(&metrics));
    // The capture starts at record 343 and has gaps: lost records.
    assert!(
        metrics.contains("oomwatch_kmsg_records_lost_total 841"),
        "{metrics}"
    );
    if let Some(r) = common::promtool_check_metrics(&metrics) {
        r.expect("promtool check metrics");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn replaying_twice_with_the_same_state_counts_once() {
    let tmp = scratch("twice");
    let (_, first) = replay(&fixtures().join("replay.kmsg"), &tmp, &[]);
    let (out, second) = replay(&fixtures().join("replay.kmsg"), &tmp, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        ours(&first),
        ours(&second),
        "a second pass over handled records changed the counters"
    );
    assert!(
        out.stdout.is_empty(),
        "kills logged twice: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn hostile_kmsg_never_crashes() {
    let tmp = scratch("hostile");
    let mut junk = Vec::new();
    junk.extend_from_slice(b"6,1,10,-;Memory cgroup out of memory: Killed process (x\n");
    junk.extend_from_slice(b"not a record at all\n");
    junk.extend_from_slice(b"99999999999999999999999,2,3,-;overflowing priority\n");
    junk.extend_from_slice(b"3,5,20,-;Out of memory: Killed process 42 (a, b (c)) total-vm:1kB, anon-rss:2kB, file-rss:3kB\n");
    junk.extend_from_slice(b" SUBSYSTEM=memory\n\xff\xfe\x00binary\n");
    junk.extend_from_slice(
        b"4,6,30,-;x invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
    );
    let f = tmp.join("junk.kmsg");
    std::fs::write(&f, junk).unwrap();
    let (out, metrics) = replay(&f, &tmp, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("pid 42 (a, b (c))"), "{log}");
    assert!(log.contains("OOM report without a kill line"), "{log}");
    assert!(
        metrics.contains("oomwatch_oom_reports_incomplete_total 1"),
        "{metrics}"
    );
    // `Killed process (x` has no pid; a line that is not a record; a priority
    // that overflows; a line that is not UTF-8.
    assert!(
        metrics.contains("oomwatch_unreadable_lines_total 4"),
        "{metrics}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn missing_mounts_are_reported_not_fatal() {
    let tmp = scratch("mounts");
    let (out, _) = replay_with(
        &fixtures().join("replay.kmsg"),
        &tmp,
        Path::new("/nonexistent/pods"),
        &["--cgroup-root", "/nonexistent/cgroup"],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/pods is not mounted: names from it will be unknown"),
        "{err}"
    );
    assert!(
        err.contains("no memory cgroup hierarchy under /nonexistent/cgroup"),
        "{err}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn bad_paths_and_flags_are_clear_errors() {
    let tmp = scratch("bad");
    let state = tmp.join("state").display().to_string();
    let o = oomwatch(&[
        "run",
        "--kmsg",
        "/nonexistent/kmsg",
        "--state-dir",
        &state,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/kmsg"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = oomwatch(&["run", "--forget-after", "1y"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unit must be ms, s, m, h or d"));
    let o = oomwatch(&["run", "--listen", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
    let o = oomwatch(&["run", "--state-dir", "/proc/self/oomwatch-state"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("state dir /proc/self/oomwatch-state"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let kmsg = fixtures().join("replay.kmsg").display().to_string();
    let o = oomwatch(&[
        "run",
        "--kmsg",
        &kmsg,
        "--state-dir",
        &state,
        "--listen",
        &addr,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("cannot listen on {addr}")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn json_log_lines_carry_the_record_and_the_names() {
    let tmp = scratch("json");
    let (out, _) = replay(
        &fixtures().join("replay.kmsg"),
        &tmp,
        &["--log-format", "json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 18);
    let be = &lines[0];
    assert_eq!(
        (
            be["namespace"].as_str(),
            be["pod"].as_str(),
            be["container"].as_str()
        ),
        (Some("demo"), Some("besteffort-6d4f"), Some("eater"))
    );
    assert_eq!(be["qos"], "BestEffort");
    assert_eq!(be["pid"], 7103);
    assert_eq!(be["cgroup_source"], "report");
    assert_eq!(be["node"], "node2");
    assert_eq!(be["time"], 1730000623.747778);
    assert_eq!(lines[17]["bare"], true);
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// A kmsg that ends (here a FIFO whose writer goes away) is a stopped
/// reader: /healthz fails so the kubelet restarts the pod.
#[test]
fn healthz_fails_when_the_reader_stops() {
    let tmp = scratch("healthz");
    let fifo = tmp.join("kmsg");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oomwatch"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--kmsg")
        .arg(&fifo)
        .arg("--state-dir")
        .arg(tmp.join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        std::io::Write::write_all(&mut w, b"6,1,1,-;hello\n").unwrap();
    } // the writer goes away: end of input on a non-file
    let get = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        std::io::Write::write_all(
            &mut s,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        let mut b = String::new();
        std::io::Read::read_to_string(&mut s, &mut b).ok()?;
        Some(b)
    };
    let t = std::time::Instant::now();
    let mut last = String::new();
    while t.elapsed() < std::time::Duration::from_secs(10) {
        last = get().unwrap_or_default();
        if last.starts_with("HTTP/1.1 503") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        last.starts_with("HTTP/1.1 503") && last.contains("kmsg reader stopped"),
        "{last}"
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    std::fs::remove_dir_all(&tmp).unwrap();
}
