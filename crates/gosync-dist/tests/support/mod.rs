//! What the recipe test files share: the failure bound, the macro that runs every case on
//! both backends, and small helpers.
//!
//! Every case is `async fn case(client: Client)`; `cases!(a, b, ...)` makes `embedded::a` (on
//! the in-process backend) and `etcd::a` (on a real etcd started for the test;
//! `GOSYNC_SKIP_ETCD=1` skips those) for each.

// Each test file uses a different subset.
#![allow(dead_code, unused_macros)]

use std::future::Future;
use std::time::Duration;

use gosync_dist::testing::EtcdServer;
use gosync_dist::{Client, Session};

/// Failure bound for waits that should finish at once.
pub const SOON: Duration = Duration::from_secs(10);

/// Runs each listed case on the embedded backend and on a real etcd.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(gosync_dist::Client::embedded()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(server) = gosync_dist::testing::EtcdServer::start_or_skip() else {
                        return;
                    };
                    let client = crate::support::connect(&server).await;
                    super::$case(client).await;
                    drop(server);
                }
            )*
        }
    };
}

/// A client of the test etcd.
pub async fn connect(server: &EtcdServer) -> Client {
    Client::etcd(&server.endpoints())
        .await
        .unwrap_or_else(|e| panic!("connecting to the test etcd failed: {e}"))
}

/// A session with the default TTL.
pub async fn session(client: &Client) -> Session {
    Session::new(client).await.expect("session")
}

/// Awaits `fut`, failing the test if it takes longer than [`SOON`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(SOON, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {SOON:?}"))
}
