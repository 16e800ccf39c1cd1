//! eater as a user runs it.

use std::process::{Command, Stdio};
use std::time::Duration;

fn eater() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eater"))
}

#[test]
fn eats_in_steps_and_the_memory_is_resident() {
    let o = eater()
        .args([
            "--size",
            "24Mi",
            "--step",
            "8Mi",
            "--interval",
            "0",
            "--hold",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[2].starts_with("eater: allocated 24 MiB of 24 MiB, rss "),
        "{out}"
    );
    let rss: f64 = lines[2]
        .rsplit("rss ")
        .next()
        .unwrap()
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!(rss >= 24.0, "touched pages are resident: {rss}");
}

#[test]
fn sigterm_while_holding_exits_cleanly() {
    let c = eater()
        .args(["--size", "8Mi", "--hold", "forever"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .arg("-TERM")
        .arg(c.id().to_string())
        .status()
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("stopping on signal"));
}

#[test]
fn bad_flags_exit_2() {
    for a in [
        &["--size", "lots"][..],
        &[],
        &["--size", "1Gi", "--then", "later"],
        &["--frobnicate"],
    ] {
        let o = eater().args(a).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{a:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("usage: eater"),
            "{a:?}"
        );
    }
}
