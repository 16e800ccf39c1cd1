//! Following the kernel ring through rmesg: `/dev/kmsg` live, or a captured
//! raw kmsg file replayed to its end.
//!
//! `/dev/kmsg` returns one record per read(). rmesg's iterator runs on a
//! thread of its own and hands records over a channel: an async file would
//! cost a thread hand-off per record, ~80 of them before a report's kill line
//! (measured: p50 27 ms from record to log line, now well under 1 ms).

use rmesg::entry::LogFacility;
use rmesg::error::RMesgError;
use rmesg::kmsgfile::KMsgEntriesIter;
use tokio::sync::mpsc;

#[derive(Debug)]
pub struct Record {
    /// None for lines that are not records (dictionary ` KEY=value` lines).
    pub seq: Option<u64>,
    pub usec: u64,
    /// Facility `kern`; user space can write records into the ring too.
    pub kernel: bool,
    pub text: String,
}

#[derive(Debug)]
pub enum Item {
    Record(Record),
    /// EPIPE: the ring overwrote records before we read them. Reading goes
    /// on from the oldest record left; the sequence gap says how many.
    Overrun,
    /// A line rmesg could not read.
    Unreadable(String),
    Failed(String),
}

/// Records buffered between the reader thread and the decoder.
const QUEUE: usize = 4096;
/// Errors in a row before the reader gives up.
const MAX_ERRORS: u32 = 1000;

pub struct Follower {
    rx: mpsc::Receiver<Item>,
}

fn item(r: Result<rmesg::entry::Entry, RMesgError>) -> Item {
    match r {
        Ok(e) => Item::Record(Record {
            seq: e.sequence_num.map(|s| s as u64),
            usec: e
                .timestamp_from_system_start
                .map_or(0, |d| d.as_micros() as u64),
            kernel: matches!(e.facility, Some(LogFacility::Kern) | None),
            text: e.message,
        }),
        Err(RMesgError::IOError(m)) if m.contains("Broken pipe") || m.contains("os error 32") => {
            Item::Overrun
        }
        // A line that is not UTF-8 (only in a file: kmsg escapes bytes).
        Err(RMesgError::IOError(m)) if m.contains("valid UTF-8") || m.contains("InvalidData") => {
            Item::Unreadable(m)
        }
        Err(RMesgError::EntryParsingError(m)) => Item::Unreadable(m),
        Err(e) => Item::Failed(e.to_string()),
    }
}

impl Follower {
    pub fn open(path: &str) -> Result<Follower, String> {
        let iter = KMsgEntriesIter::with_options(Some(path.to_string()), false)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("kmsg".into())
            .spawn(move || {
                let mut errors = 0;
                for r in iter {
                    let it = item(r);
                    errors = if matches!(it, Item::Failed(_)) {
                        errors + 1
                    } else {
                        0
                    };
                    let stop = errors >= MAX_ERRORS;
                    if tx.blocking_send(it).is_err() || stop {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the kmsg reader: {e}"))?;
        Ok(Follower { rx })
    }

    /// The next item; None at the end of a replayed file.
    pub async fn next(&mut self) -> Option<Item> {
        self.rx.recv().await
    }
}
