//! Where raw messages come from, and where they go when done: the IMAP
//! support mailbox, a local Maildir, and one message on stdin (MTA pipe).
//!
//! Sources hand out raw bytes with a stable key and move messages as told;
//! they never parse, decide or store.

pub mod imap;
pub mod maildir;
