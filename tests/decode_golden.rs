//! Every fixture in tests/fixtures/decode decodes to exactly its golden
//! records and text. `UPDATE_GOLDEN=1 cargo test --test decode_golden`
//! rewrites the goldens; review the diff before committing.

use oomwatch::cli::decode::{write_all, Format};
use oomwatch::decode;
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode");
    let mut v: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("README.md" | "derive.py")
            )
        })
        .collect();
    v.sort();
    v
}

fn render(path: &Path) -> (String, String) {
    let bytes = fs::read(path).unwrap();
    let mut d = decode::decode(&String::from_utf8_lossy(&bytes));
    oomwatch::cli::decode::judge_all(&mut d, &oomwatch::eviction::config::Eviction::default());
    let mut json = Vec::new();
    write_all(&mut json, &d, Format::Json).unwrap();
    let tail = serde_json::json!({ "incomplete": d.incomplete, "stats": d.stats });
    json.extend_from_slice(format!("{tail}\n").as_bytes());
    let mut text = Vec::new();
    write_all(&mut text, &d, Format::Text).unwrap();
    (
        String::from_utf8(json).unwrap(),
        String::from_utf8(text).unwrap(),
    )
}

#[test]
fn fixtures_match_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failed = Vec::new();
    let all = fixtures();
    assert!(all.len() >= 30, "fixtures missing: {}", all.len());
    for path in all {
        let (json, text) = render(&path);
        let name = path.file_name().unwrap().to_str().unwrap();
        let golden = path.parent().unwrap().join("golden");
        for (ext, got) in [("json", &json), ("txt", &text)] {
            let g = golden.join(format!("{name}.{ext}"));
            if update {
                fs::write(&g, got).unwrap();
            } else if fs::read_to_string(&g).ok().as_deref() != Some(got.as_str()) {
                failed.push(g.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "differs from golden (UPDATE_GOLDEN=1 to rewrite): {failed:#?}"
    );
}
