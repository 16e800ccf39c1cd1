//! Hostile input: arbitrary bytes never panic the decoder, and mangling a
//! real capture (lost lines, noise, wrapping, cut lines) never loses a kill
//! whose `Killed process` line survived.

use oomwatch::decode::decode;
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<String> {
    let p = format!(
        "{}/tests/fixtures/decode/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn kills(lines: &[String]) -> Vec<u32> {
    decode(&lines.join("\n"))
        .kills
        .iter()
        .map(|k| k.pid)
        .collect()
}

const REAL: &[&str] = &[
    "v1-qos-classes.dmesg",
    "v1-burst-15-kills.kmsg",
    "seed-node2.dmesg",
    "v2-global.kmsg",
    "journal-short.log",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn oom_shaped_garbage_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("Killed process ".to_string()), Just("oom-kill:".to_string()), Just(" invoked oom-killer: ".to_string()),
        Just("Mem-Info:\n".to_string()), Just("[  pid  ]   uid  tgid total_vm rss name\n".to_string()), Just("Tasks in ".to_string()),
        Just("(".to_string()), Just(")".to_string()), Just(",".to_string()), Just("task_memcg=".to_string()), Just("\\x0a".to_string()),
        Just("#012".to_string()), Just("\n".to_string()), Just("[1.5] ".to_string()), Just("6,1,2,-;".to_string()),
        "[0-9]{1,6}", "[a-z/ _:=-]{0,12}", any::<char>().prop_map(|c| c.to_string()),
    ], 0..200)) {
        let _ = decode(&parts.concat());
    }

    #[test]
    fn losing_other_lines_never_loses_a_kill(which in 0..REAL.len(), keep in proptest::collection::vec(any::<bool>(), 2000)) {
        let lines = fixture(REAL[which]);
        let want = kills(&lines);
        let kept: Vec<String> = lines.iter().enumerate()
            .filter(|(i, l)| l.contains("Killed process") || keep[i % keep.len()])
            .map(|(_, l)| l.clone()).collect();
        prop_assert_eq!(kills(&kept), want);
    }

    #[test]
    fn noise_between_lines_never_loses_a_kill(which in 0..REAL.len(), every in 1usize..20, noise in "[ -~]{0,80}") {
        let lines = fixture(REAL[which]);
        let want = kills(&lines);
        let mut mixed = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            mixed.push(l.clone());
            if i % every == 0 {
                mixed.push(format!("Dec 04 16:13:17 node2 kubelet[1041]: {noise}"));
            }
        }
        prop_assert_eq!(kills(&mixed), want);
    }

    #[test]
    fn terminal_wrapping_keeps_every_kill(width in 40usize..200) {
        let lines = fixture("v1-qos-classes.dmesg");
        let want = decode(&lines.join("\n")).kills;
        let mut wrapped = Vec::new();
        for l in &lines {
            let chars: Vec<char> = l.chars().collect();
            for c in chars.chunks(width) {
                wrapped.push(c.iter().collect::<String>());
            }
        }
        let got = decode(&wrapped.join("\n")).kills;
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!(g.pid, w.pid);
            prop_assert_eq!(&g.pod_uid, &w.pod_uid);
            prop_assert_eq!(g.anon_rss_bytes, w.anon_rss_bytes);
            prop_assert_eq!(&g.comm, &w.comm);
        }
    }

    #[test]
    fn cut_lines_never_panic(which in 0..REAL.len(), cuts in proptest::collection::vec(0usize..300, 50)) {
        let lines = fixture(REAL[which]);
        let cut: Vec<String> = lines.iter().enumerate().map(|(i, l)| {
            let n = cuts[i % cuts.len()];
            l.char_indices().nth(n).map_or(l.clone(), |(b, _)| l[..b].to_string())
        }).collect();
        let d = decode(&cut.join("\n"));
        prop_assert!(d.kills.len() <= kills(&lines).len() + d.stats.duplicates as usize + 1);
    }
}

/// A reader that hands out a few bytes at a time: every chunk boundary.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn streaming_through_tiny_reads_equals_whole_input() {
    for name in REAL.iter().chain(&[
        "seed-whole-paste.txt",
        "truncated-report.dmesg",
        "mail-quoted.txt",
    ]) {
        let text = fixture(name).join("\n");
        let whole = decode(&text);
        for step in [1, 7, 4096] {
            let streamed = oomwatch::decode::decode_reader(Trickle(text.as_bytes(), step)).unwrap();
            assert_eq!(streamed.kills, whole.kills, "{name} step {step}");
            assert_eq!(streamed.stats, whole.stats, "{name} step {step}");
        }
    }
}
