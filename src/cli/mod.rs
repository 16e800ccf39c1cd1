//! Subcommands: argument types and the I/O around the library.

pub mod decode;
pub mod run;
