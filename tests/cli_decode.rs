//! `oomwatch decode` as a user runs it: exit codes, messages, formats.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const SEED: &str = "tests/fixtures/decode/seed-node2.dmesg";

fn oomwatch(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oomwatch"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn decodes_the_seed_report() {
    let o = oomwatch(&["decode", SEED], None);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "pid 13623 (ld-musl-x86_64.) BestEffort pod 569f0038-b213-4294-a1e2-4dcc5b2c8d9e"
        ),
        "{out}"
    );
    assert!(out.contains("global OOM"), "{out}");
    assert!(
        out.ends_with("1 OOM kill; by constraint: global 1; by QoS: BestEffort 1\n"),
        "{out}"
    );
}

#[test]
fn json_is_one_object_per_kill() {
    let o = oomwatch(
        &[
            "decode",
            "--format",
            "json",
            "tests/fixtures/decode/v1-burst-15-kills.kmsg",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 15);
    assert_eq!(lines[0]["pod_uid"], "95362234-1051-427c-918b-40613f0fc217");
    assert_eq!(lines[14]["bare"], true);
    assert!(text(&o.stderr).starts_with("15 OOM kills"));
}

#[test]
fn reads_standard_input() {
    let input = std::fs::read(SEED).unwrap();
    let o = oomwatch(&["decode", "-"], Some(&input));
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("pid 13623"));
}

#[test]
fn a_log_without_oom_says_so_and_succeeds() {
    let o = oomwatch(&["decode", "-"], Some(b"[    1.0] eth0: link up\nhello\n"));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stdout), "no OOM kill found (2 lines read)\n");
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let o = oomwatch(&["decode", "/nonexistent/dmesg.txt"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot read '/nonexistent/dmesg.txt'") && err.contains("No such file"),
        "{err}"
    );
    let o = oomwatch(&["decode", "tests"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("cannot read 'tests'"));
}

#[test]
fn bad_flags_exit_2() {
    let o = oomwatch(&["decode", "--format", "yaml", SEED], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("invalid value 'yaml'"));
    assert_eq!(oomwatch(&["decode"], None).status.code(), Some(2));
    assert_eq!(oomwatch(&["frobnicate"], None).status.code(), Some(2));
}

#[test]
fn invalid_utf8_is_read_not_fatal() {
    let mut input = b"\xff\xfe[ 1.0] \x80".to_vec();
    input.extend_from_slice(&std::fs::read(SEED).unwrap());
    let o = oomwatch(&["decode", "-"], Some(&input));
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("pid 13623"));
}
