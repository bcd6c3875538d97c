//! # gosync-dist — distributed locks, elections and sessions
//!
//! The distributed primitives of etcd's Go client (`concurrency.Session`, `Mutex`,
//! `Election`, and the `recipes` read-write mutex) in async Rust, on two backends behind one
//! handle, [`Client`]:
//!
//! * **etcd** — [`Client::etcd`] connects to a real cluster;
//! * **embedded** — [`Client::embedded`] runs an in-process store with etcd's semantics
//!   (revisions, leases with TTL expiry, transactions, watches from a revision), with fault
//!   injection ([`backend::Faults`]) for tests.
//!
//! Every operation is network I/O, so every operation is `async`, under its plain name.
//! Errors are one enum, [`Error`], whose messages say what happened and what to do.
//!
//! ```
//! use gosync_dist::backend::{PutRequest, RangeRequest};
//! use gosync_dist::Client;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gosync_dist::Result<()> {
//! let client = Client::embedded();
//! let lease = client.lease_grant(10).await?.id;
//! client.put(PutRequest::new("/svc/a", "10.0.0.1").with_lease(lease)).await?;
//! let live = client.range(RangeRequest::prefix("/svc/")).await?;
//! assert_eq!(live.count, 1);
//! client.lease_revoke(lease).await?; // the key goes with its lease
//! assert!(client.get("/svc/a").await?.is_none());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod backend;
mod client;
pub mod election;
mod error;
pub mod mutex;
pub mod rwmutex;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
mod wait;

pub use client::{Client, ConnectOptions};
pub use election::{Election, LeaderValue, Observe};
pub use error::{Error, Result};
pub use mutex::Mutex;
pub use rwmutex::RwMutex;
pub use session::{Session, SessionBuilder, SessionEnd};
