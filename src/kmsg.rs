//! Following the kernel ring through rmesg: `/dev/kmsg` live, or a captured
//! raw kmsg file replayed to its end.

use futures_util::StreamExt;
use rmesg::entry::LogFacility;
use rmesg::kmsgfile::KMsgEntriesStream;

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

pub struct Follower {
    stream: KMsgEntriesStream,
}

impl Follower {
    pub async fn open(path: &str) -> Result<Follower, String> {
        KMsgEntriesStream::with_options(Some(path.to_string()), false)
            .await
            .map(|stream| Follower { stream })
            .map_err(|e| format!("cannot read {path}: {e}"))
    }

    /// The next item; None at the end of a replayed file.
    pub async fn next(&mut self) -> Option<Item> {
        let item = self.stream.next().await?;
        Some(match item {
            Ok(e) => Item::Record(Record {
                seq: e.sequence_num.map(|s| s as u64),
                usec: e
                    .timestamp_from_system_start
                    .map_or(0, |d| d.as_micros() as u64),
                kernel: matches!(e.facility, Some(LogFacility::Kern) | None),
                text: e.message,
            }),
            Err(rmesg::error::RMesgError::IOError(m))
                if m.contains("BrokenPipe") || m.contains("os error 32") =>
            {
                Item::Overrun
            }
            // A line that is not UTF-8 (only in a file: kmsg escapes bytes).
            Err(rmesg::error::RMesgError::IOError(m)) if m.contains("InvalidData") => {
                Item::Unreadable(m)
            }
            Err(rmesg::error::RMesgError::EntryParsingError(m)) => Item::Unreadable(m),
            Err(e) => Item::Failed(e.to_string()),
        })
    }
}
