//! eater: allocate memory in steps, touch every page so it is resident,
//! hold it, then exit, free it or start again. Reproduces OOM kills on
//! purpose; see k8s/ for the seed experiment.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: eater --size QUANTITY [--step QUANTITY] [--interval DURATION] [--hold forever|DURATION] [--then exit|free|repeat]
  QUANTITY: bytes, or with a unit: Ki Mi Gi (powers of 2), k M G (powers of 10); e.g. 1000Mi
  DURATION: 0, 500ms, 1s, 30s, 5m, 1h";

const PAGE: usize = 4096;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

#[derive(Debug, PartialEq)]
enum Hold {
    Forever,
    For(Duration),
}

#[derive(Debug, PartialEq)]
enum Then {
    Exit,
    Free,
    Repeat,
}

#[derive(Debug, PartialEq)]
struct Opts {
    size: u64,
    step: u64,
    interval: Duration,
    hold: Hold,
    then: Then,
}

fn quantity(s: &str) -> Result<u64, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| format!("'{s}' is not a quantity"))?;
    let m = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1048576.0,
        "Gi" => 1073741824.0,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use Ki, Mi, Gi, k, M, G)"
            ))
        }
    };
    Ok((n * m) as u64)
}

fn duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{s}' is not a duration"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m, h)")),
    })
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        size: 0,
        step: 100 << 20,
        interval: Duration::from_secs(1),
        hold: Hold::Forever,
        then: Then::Exit,
    };
    let mut size = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--size" => size = Some(quantity(&value()?)?),
            "--step" => o.step = quantity(&value()?)?,
            "--interval" => o.interval = duration(&value()?)?,
            "--hold" => {
                let v = value()?;
                o.hold = if v == "forever" {
                    Hold::Forever
                } else {
                    Hold::For(duration(&v)?)
                };
            }
            "--then" => {
                o.then = match value()?.as_str() {
                    "exit" => Then::Exit,
                    "free" => Then::Free,
                    "repeat" => Then::Repeat,
                    v => return Err(format!("--then: '{v}' is not exit, free or repeat")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown flag '{flag}'")),
        }
    }
    o.size = size.ok_or("--size is required")?;
    if o.step == 0 {
        return Err("--step must be more than 0".into());
    }
    Ok(o)
}

/// Resident memory from /proc/self/statm, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * PAGE as u64
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// Sleep, waking early on SIGTERM. True when asked to stop.
fn nap(d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if STOP.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    STOP.load(Ordering::SeqCst)
}

fn eat(o: &Opts, out: &mut impl Write) -> bool {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0u64;
    while total < o.size {
        let n = o.step.min(o.size - total) as usize;
        let mut v = vec![0u8; n];
        // Touch every page: untouched pages are not resident.
        for i in (0..n).step_by(PAGE) {
            v[i] = 1;
        }
        chunks.push(v);
        total += n as u64;
        let _ = writeln!(
            out,
            "eater: allocated {:.0} MiB of {:.0} MiB, rss {:.1} MiB",
            mib(total),
            mib(o.size),
            mib(rss())
        );
        let _ = out.flush();
        if total < o.size && nap(o.interval) {
            return true;
        }
    }
    let stop = match o.hold {
        Hold::Forever => loop {
            if nap(Duration::from_secs(3600)) {
                break true;
            }
        },
        Hold::For(d) => nap(d),
    };
    drop(chunks);
    stop
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("eater: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    unsafe {
        signal(15, on_term);
        signal(2, on_term);
    }
    let mut out = std::io::stdout();
    loop {
        if eat(&o, &mut out) {
            let _ = writeln!(out, "eater: stopping on signal, memory released");
            return;
        }
        match o.then {
            Then::Exit => return,
            Then::Free => {
                let _ = writeln!(
                    out,
                    "eater: freed, rss {:.1} MiB; holding nothing",
                    mib(rss())
                );
                let _ = out.flush();
                while !nap(Duration::from_secs(3600)) {}
                return;
            }
            Then::Repeat => {
                let _ = writeln!(out, "eater: freed, starting again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn quantities_and_durations() {
        assert_eq!(quantity("1000Mi"), Ok(1000 << 20));
        assert_eq!(quantity("1Gi"), Ok(1 << 30));
        assert_eq!(quantity("500M"), Ok(500_000_000));
        assert_eq!(quantity("1.5G"), Ok(1_500_000_000));
        assert!(quantity("10Xi").is_err());
        assert!(quantity("Mi").is_err());
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("1y").is_err());
    }

    #[test]
    fn flags() {
        let o = parse(&args(
            "--size 1000Mi --step=200Mi --interval 0 --hold 30s --then repeat",
        ))
        .unwrap();
        assert_eq!(
            o,
            Opts {
                size: 1000 << 20,
                step: 200 << 20,
                interval: Duration::ZERO,
                hold: Hold::For(Duration::from_secs(30)),
                then: Then::Repeat
            }
        );
        assert_eq!(parse(&args("--size 1Gi")).unwrap().hold, Hold::Forever);
        assert_eq!(parse(&args("")).unwrap_err(), "--size is required");
        assert!(parse(&args("--size")).is_err());
        assert!(parse(&args("--size 1Gi --then later")).is_err());
        assert!(parse(&args("--size 1Gi --bogus")).is_err());
        assert!(parse(&args("--size 1Gi --step 0")).is_err());
    }
}
