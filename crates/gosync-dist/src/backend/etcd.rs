//! The etcd backend: [`Backend`] over the `etcd-client` crate.
//!
//! One gRPC connection (a balanced channel over the given endpoints) is shared by every
//! request; `etcd-client`'s per-service clients are cheap clones of it. Every `etcd-client`
//! error is mapped to the crate's [`Error`]:
//!
//! * transport failures and `Unavailable` → [`Error::Unreachable`] naming the endpoints;
//! * "requested lease not found" → [`Error::LeaseNotFound`];
//! * "required revision has been compacted" → [`Error::Compacted`];
//! * "required revision is a future revision" → [`Error::InvalidArgument`] (`revision`);
//! * other `InvalidArgument` / `OutOfRange` answers → [`Error::InvalidArgument`];
//! * anything else → [`Error::Backend`] with etcd's message.
//!
//! A watch whose stream breaks, or which etcd cancels (compaction, server shutdown), yields
//! one error item and then ends; it never ends silently.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client as ec;

use super::{
    Backend, DeleteRequest, DeleteResponse, Event, EventKind, Header, KeyRange, KeyValue,
    LeaseGrantResponse, LeaseId, LeaseKeepAliveResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchControl, WatchRequest, WatchResponse,
    WatchStream,
};
use crate::client::ConnectOptions;
use crate::error::{Error, Result};

/// The key read once at connect time to check that the cluster answers (any key will do;
/// only its count is asked for).
const PROBE_KEY: &[u8] = b"\x00gosync-dist-connect-probe";

/// Connects to etcd and checks that it answers: a linearizable read must succeed within
/// the connect timeout, otherwise the result is [`Error::Unreachable`] naming the endpoints.
pub(crate) async fn connect(endpoints: &[&str], opts: ConnectOptions) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(EtcdBackend::connect(endpoints, opts).await?))
}

/// [`Backend`] over one `etcd-client` connection.
pub(crate) struct EtcdBackend {
    client: ec::Client,
    endpoints: Vec<String>,
    request_timeout: Option<Duration>,
    /// One open keep-alive stream per lease kept alive through this backend, so a
    /// keep-alive is one round trip. `None` while a round is in flight or after a failure:
    /// the next round opens a fresh stream.
    keepers: StdMutex<HashMap<LeaseId, Arc<tokio::sync::Mutex<Option<Keeper>>>>>,
}

/// An open keep-alive stream for one lease.
struct Keeper {
    sender: ec::LeaseKeeper,
    answers: ec::LeaseKeepAliveStream,
}

impl EtcdBackend {
    async fn connect(endpoints: &[&str], opts: ConnectOptions) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::invalid(
                "endpoints",
                "give at least one endpoint, e.g. http://127.0.0.1:2379",
            ));
        }
        if let Some(bad) = endpoints.iter().find(|e| e.trim().is_empty()) {
            return Err(Error::invalid(
                "endpoints",
                format!("empty endpoint {bad:?} in the list"),
            ));
        }
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.trim().to_owned()).collect();
        let unreachable = |reason: String| Error::Unreachable {
            endpoints: endpoints.clone(),
            reason,
        };
        let connect_timeout = opts.connect_timeout;
        let mut options = ec::ConnectOptions::new().with_connect_timeout(connect_timeout);
        if let Some(interval) = opts.keep_alive_interval {
            // Pings only while requests or watches are open: etcd closes connections that
            // ping while idle. A ping unanswered for one interval marks the connection dead.
            options = options
                .with_keep_alive(interval, interval)
                .with_keep_alive_while_idle(false);
        }
        if let Some((user, password)) = &opts.credentials {
            options = options
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        // `Client::connect` only sets the channel up (connections are made lazily, except
        // for authentication); the probe read below is what proves that the cluster answers.
        // Both run under the timeout: a server that accepts TCP connections but never
        // answers would otherwise hang here.
        let attempt = async {
            let client = ec::Client::connect(&endpoints, Some(options))
                .await
                .map_err(|e| connect_error(e, &endpoints))?;
            let probe = client
                .kv_client()
                .get(PROBE_KEY, Some(ec::GetOptions::new().with_count_only()))
                .await;
            match probe {
                Ok(_) => Ok(client),
                Err(e) if probe_answered(&e) => Ok(client),
                Err(e) => Err(connect_error(e, &endpoints)),
            }
        };
        let client = match tokio::time::timeout(connect_timeout, attempt).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within the connect timeout of {connect_timeout:?}"
                )))
            }
        };
        Ok(EtcdBackend {
            client,
            endpoints,
            request_timeout: opts.request_timeout,
            keepers: StdMutex::new(HashMap::new()),
        })
    }

    /// Runs one request under the request timeout (if any) and maps its error; `lease` is
    /// the lease the request names, for [`Error::LeaseNotFound`].
    async fn call<T>(
        &self,
        operation: &'static str,
        lease: Option<LeaseId>,
        request: impl Future<Output = std::result::Result<T, ec::Error>>,
    ) -> Result<T> {
        self.timed(operation, async {
            request.await.map_err(|e| self.map_err(e, lease))
        })
        .await
    }

    /// Runs `work` under the request timeout, if one is set.
    async fn timed<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.request_timeout {
            Some(after) => tokio::time::timeout(after, work)
                .await
                .unwrap_or(Err(Error::Timeout { operation, after })),
            None => work.await,
        }
    }

    /// Maps an `etcd-client` error; `lease` is the lease the request named, if any.
    fn map_err(&self, err: ec::Error, lease: Option<LeaseId>) -> Error {
        map_error(err, &self.endpoints, lease)
    }

    fn keeper_slot(&self, id: LeaseId) -> Arc<tokio::sync::Mutex<Option<Keeper>>> {
        let mut keepers = self.keepers.lock().unwrap_or_else(|e| e.into_inner());
        keepers.entry(id).or_default().clone()
    }

    fn forget_keeper(&self, id: LeaseId) {
        let mut keepers = self.keepers.lock().unwrap_or_else(|e| e.into_inner());
        keepers.remove(&id);
    }

    /// Opens a keep-alive stream for `id`. etcd answers the first request at once; a lease it
    /// does not know is [`Error::LeaseNotFound`].
    async fn open_keeper(&self, id: LeaseId) -> Result<Keeper> {
        match self.client.lease_client().keep_alive(id).await {
            Ok((sender, answers)) => Ok(Keeper { sender, answers }),
            Err(e) => Err(self.map_err(e, Some(id))),
        }
    }

    /// One keep-alive round on an open stream.
    async fn keep_alive_round(
        &self,
        id: LeaseId,
        keeper: &mut Keeper,
    ) -> Result<LeaseKeepAliveResponse> {
        keeper
            .sender
            .keep_alive()
            .await
            .map_err(|e| self.map_err(e, Some(id)))?;
        match keeper.answers.message().await {
            Ok(Some(answer)) if answer.ttl() > 0 => Ok(LeaseKeepAliveResponse {
                header: header(answer.header()),
                id,
                ttl: answer.ttl(),
            }),
            Ok(Some(_)) => Err(Error::LeaseNotFound { lease: id }),
            Ok(None) => Err(Error::Unreachable {
                endpoints: self.endpoints.clone(),
                reason: "the server closed the lease keep-alive stream".to_owned(),
            }),
            Err(e) => Err(self.map_err(e, Some(id))),
        }
    }

    /// One keep-alive, reusing the lease's open stream when there is one.
    async fn keep_alive_once(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse> {
        let slot = self.keeper_slot(id);
        let mut slot = slot.lock().await;
        // The stream is taken out for the round and put back only after a complete answer,
        // so a round cancelled half-way (request sent, answer unread) never leaves a stale
        // answer for the next round to read.
        let reused = match slot.take() {
            Some(mut keeper) => match self.keep_alive_round(id, &mut keeper).await {
                Ok(answer) => Some(Ok((keeper, answer))),
                // A lease that is gone stays gone.
                Err(e @ Error::LeaseNotFound { .. }) => Some(Err(e)),
                // Anything else may be a stale stream: retry once on a fresh one.
                Err(_) => None,
            },
            None => None,
        };
        let result = match reused {
            Some(result) => result,
            None => {
                async {
                    // Opening the stream sends a first keep-alive, but `etcd-client` keeps that
                    // answer's TTL to itself: a second round reports it.
                    let mut keeper = self.open_keeper(id).await?;
                    let answer = self.keep_alive_round(id, &mut keeper).await?;
                    Ok((keeper, answer))
                }
                .await
            }
        };
        match result {
            Ok((keeper, answer)) => {
                *slot = Some(keeper);
                Ok(answer)
            }
            Err(e) => {
                if matches!(e, Error::LeaseNotFound { .. }) {
                    drop(slot);
                    self.forget_keeper(id);
                }
                Err(e)
            }
        }
    }

    /// Opens a watch and waits for etcd's confirmation.
    async fn open_watch(&self, req: &WatchRequest) -> Result<WatchStream> {
        let start_revision = req.start_revision;
        let (key, options) = watch_options(req);
        let stream = self
            .client
            .watch_client()
            .watch(key, Some(options))
            .await
            .map_err(|e| self.map_err(e, None))?;
        let (sender, mut responses) = stream.split();
        // etcd confirms the watch with a `created` response before any event: once it is
        // here, the watch is registered and sees every revision from its start on.
        let created = match responses.message().await {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                return Err(Error::WatchClosed {
                    reason: "etcd closed the watch stream before confirming the watch".into(),
                })
            }
            Err(e) => return Err(self.map_err(e, None)),
        };
        if created.canceled() {
            return Err(cancel_error(&created, start_revision.unwrap_or_default()));
        }
        let state = WatchState {
            responses,
            pending: (!created.created() && !created.events().is_empty())
                .then(|| watch_response(&created)),
            next_revision: start_revision.unwrap_or(0),
            done: false,
            endpoints: self.endpoints.clone(),
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next_item().await?;
            Some((item, state))
        });
        Ok(WatchStream::new(Box::pin(stream)).with_control(Box::new(EtcdWatchControl { sender })))
    }
}

/// The error for a failed connect (which, with credentials, includes authenticating).
fn connect_error(err: ec::Error, endpoints: &[String]) -> Error {
    match err {
        ec::Error::InvalidUri(e) => Error::invalid(
            "endpoints",
            format!("not a valid URL ({e}); use e.g. http://127.0.0.1:2379"),
        ),
        ec::Error::InvalidArgs(e) => Error::invalid("endpoints", e),
        other => match map_error(other, endpoints, None) {
            // etcd answers a missing, wrong or unknown user or password with an invalid
            // argument.
            Error::InvalidArgument { reason, .. } if reason.contains("user name is empty") => {
                Error::invalid(
                    "credentials",
                    "the cluster requires authentication: give a user and password \
                     (ConnectOptions::with_user)",
                )
            }
            Error::InvalidArgument { reason, .. } => Error::invalid("credentials", reason),
            mapped => mapped,
        },
    }
}

/// Whether the connect probe's error still shows a working server: one that answered, but
/// does not let this user read the probe key.
fn probe_answered(err: &ec::Error) -> bool {
    matches!(err, ec::Error::GRpcStatus(status) if status.code() as i32 == GRPC_PERMISSION_DENIED)
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        req.validate()?;
        let (key, options) = get_options(&req);
        let resp = self
            .call(
                "range",
                None,
                self.client.kv_client().get(key, Some(options)),
            )
            .await
            .map_err(|e| match e {
                // etcd's message does not say where history starts now; it is at least
                // the revision asked for.
                Error::Compacted { .. } => Error::Compacted {
                    revision: req.revision.unwrap_or_default(),
                    compact_revision: req.revision.unwrap_or_default(),
                },
                other => other,
            })?;
        Ok(range_response(&resp))
    }

    async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        req.validate()?;
        let lease = req.lease_id();
        let (key, value, options) = put_options(req);
        let resp = self
            .call(
                "put",
                lease,
                self.client.kv_client().put(key, value, Some(options)),
            )
            .await?;
        Ok(put_response(&resp))
    }

    async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        req.validate()?;
        let (key, options) = delete_options(&req);
        let resp = self
            .call(
                "delete",
                None,
                self.client.kv_client().delete(key, Some(options)),
            )
            .await?;
        Ok(delete_response(&resp))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        txn.validate()?;
        // The lease a "lease not found" answer is about: the first one a put names.
        let lease = txn
            .success
            .iter()
            .chain(&txn.failure)
            .find_map(|op| match op {
                TxnOp::Put(p) => p.lease_id(),
                _ => None,
            });
        let resp = self
            .call("txn", lease, self.client.kv_client().txn(etcd_txn(txn)))
            .await?;
        txn_response(&resp)
    }

    async fn lease_grant(&self, ttl_secs: i64) -> Result<LeaseGrantResponse> {
        if ttl_secs <= 0 {
            return Err(Error::invalid(
                "ttl",
                format!("must be at least 1 second, got {ttl_secs}"),
            ));
        }
        let resp = self
            .call(
                "lease grant",
                None,
                self.client.lease_client().grant(ttl_secs, None),
            )
            .await?;
        if !resp.error().is_empty() {
            return Err(Error::Backend(format!(
                "lease grant failed: {}",
                resp.error()
            )));
        }
        Ok(LeaseGrantResponse {
            header: header(resp.header()),
            id: resp.id(),
            ttl: resp.ttl(),
        })
    }

    async fn lease_revoke(&self, id: LeaseId) -> Result<LeaseRevokeResponse> {
        check_lease(id)?;
        self.forget_keeper(id);
        let resp = self
            .call(
                "lease revoke",
                Some(id),
                self.client.lease_client().revoke(id),
            )
            .await?;
        Ok(LeaseRevokeResponse {
            header: header(resp.header()),
        })
    }

    async fn lease_keep_alive_once(&self, id: LeaseId) -> Result<LeaseKeepAliveResponse> {
        check_lease(id)?;
        self.timed("lease keep-alive", self.keep_alive_once(id))
            .await
    }

    async fn lease_time_to_live(&self, id: LeaseId, keys: bool) -> Result<LeaseTimeToLiveResponse> {
        check_lease(id)?;
        let options = keys.then(|| ec::LeaseTimeToLiveOptions::new().with_keys());
        let resp = self
            .call(
                "lease time-to-live",
                Some(id),
                self.client.lease_client().time_to_live(id, options),
            )
            .await?;
        // etcd answers an unknown or expired lease with TTL -1 rather than an error.
        if resp.ttl() < 0 {
            return Err(Error::LeaseNotFound { lease: id });
        }
        Ok(LeaseTimeToLiveResponse {
            header: header(resp.header()),
            id,
            ttl: resp.ttl(),
            granted_ttl: resp.granted_ttl(),
            keys: resp.keys().to_vec(),
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        req.validate()?;
        self.timed("watch", self.open_watch(&req)).await
    }

    fn describe(&self) -> String {
        format!("etcd at {}", self.endpoints.join(", "))
    }
}

/// Rejects lease ids etcd can never have granted.
fn check_lease(id: LeaseId) -> Result<()> {
    if id <= 0 {
        return Err(Error::invalid(
            "lease",
            format!("must be a granted lease id (positive), got {id}"),
        ));
    }
    Ok(())
}

/// The receiving side of one etcd watch, turned into the trait's items.
struct WatchState {
    responses: ec::WatchResponseStream,
    /// A response that arrived with the confirmation (never in practice; kept for safety).
    pending: Option<WatchResponse>,
    /// The revision after the last event delivered (for the compaction error).
    next_revision: i64,
    done: bool,
    endpoints: Vec<String>,
}

impl WatchState {
    /// The next item, `None` after the stream has ended (an error item always comes first).
    async fn next_item(&mut self) -> Option<Result<WatchResponse>> {
        if self.done {
            return None;
        }
        if let Some(resp) = self.pending.take() {
            return Some(Ok(self.note(resp)));
        }
        loop {
            let item = match self.responses.message().await {
                Ok(Some(resp)) if resp.canceled() => Err(cancel_error(&resp, self.next_revision)),
                // A second confirmation cannot happen on a one-watch stream; skip it.
                Ok(Some(resp)) if resp.created() => continue,
                Ok(Some(resp)) => Ok(self.note(watch_response(&resp))),
                Ok(None) => Err(Error::WatchClosed {
                    reason: format!(
                        "etcd at {} closed the watch stream",
                        self.endpoints.join(", ")
                    ),
                }),
                Err(e) => Err(Error::WatchClosed {
                    reason: format!(
                        "the connection to etcd at {} broke: {}",
                        self.endpoints.join(", "),
                        describe_etcd_error(&e)
                    ),
                }),
            };
            if item.is_err() {
                self.done = true;
            }
            return Some(item);
        }
    }

    fn note(&mut self, resp: WatchResponse) -> WatchResponse {
        if let Some(last) = resp.events.last() {
            self.next_revision = last.kv.mod_revision + 1;
        }
        resp
    }
}

/// Sends progress requests on the watch's own gRPC stream. Holding it also keeps the
/// request side of the stream open; dropping the [`WatchStream`] drops both halves, which
/// resets the gRPC stream and cancels the watch on the server.
struct EtcdWatchControl {
    sender: ec::WatchRequestSender,
}

#[async_trait]
impl WatchControl for EtcdWatchControl {
    async fn request_progress(&mut self) -> Result<()> {
        self.sender
            .request_progress()
            .await
            .map_err(|e| Error::WatchClosed {
                reason: format!(
                    "cannot send a progress request: {}",
                    describe_etcd_error(&e)
                ),
            })
    }
}

/// The error item for a watch etcd canceled.
fn cancel_error(resp: &ec::WatchResponse, revision: i64) -> Error {
    if resp.compact_revision() > 0 {
        Error::Compacted {
            revision,
            compact_revision: resp.compact_revision(),
        }
    } else {
        let reason = if resp.cancel_reason().is_empty() {
            "etcd canceled the watch".to_owned()
        } else {
            format!("etcd canceled the watch: {}", resp.cancel_reason())
        };
        Error::WatchClosed { reason }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// etcd's `(key, range_end)` for a [`KeyRange`]; an empty end means "just the key", `[0]`
/// means "every key from the start on".
fn key_and_end(range: &KeyRange) -> (Vec<u8>, Vec<u8>) {
    match range {
        KeyRange::Key(k) => (k.clone(), Vec::new()),
        KeyRange::FromKey(k) => (k.clone(), vec![0]),
        KeyRange::Range { start, end } => (start.clone(), end.clone()),
        KeyRange::Prefix(p) => (p.clone(), range.range_end().unwrap_or_else(|| vec![0])),
    }
}

fn get_options(req: &RangeRequest) -> (Vec<u8>, ec::GetOptions) {
    let (key, end) = key_and_end(&req.range);
    let mut options = ec::GetOptions::new();
    if !end.is_empty() {
        options = options.with_range(end);
    }
    if let Some(revision) = req.revision {
        options = options.with_revision(revision);
    }
    if req.limit > 0 {
        options = options.with_limit(req.limit);
    }
    let target = match req.sort_target {
        SortTarget::Key => ec::SortTarget::Key,
        SortTarget::Version => ec::SortTarget::Version,
        SortTarget::Create => ec::SortTarget::Create,
        SortTarget::Mod => ec::SortTarget::Mod,
        SortTarget::Value => ec::SortTarget::Value,
    };
    let order = match req.sort_order {
        SortOrder::None => ec::SortOrder::None,
        SortOrder::Ascend => ec::SortOrder::Ascend,
        SortOrder::Descend => ec::SortOrder::Descend,
    };
    options = options.with_sort(target, order);
    if req.keys_only {
        options = options.with_keys_only();
    }
    if req.count_only {
        options = options.with_count_only();
    }
    if req.min_mod_revision > 0 {
        options = options.with_min_mod_revision(req.min_mod_revision);
    }
    if req.max_mod_revision > 0 {
        options = options.with_max_mod_revision(req.max_mod_revision);
    }
    if req.min_create_revision > 0 {
        options = options.with_min_create_revision(req.min_create_revision);
    }
    if req.max_create_revision > 0 {
        options = options.with_max_create_revision(req.max_create_revision);
    }
    (key, options)
}

fn put_options(req: PutRequest) -> (Vec<u8>, Vec<u8>, ec::PutOptions) {
    let mut options = ec::PutOptions::new();
    if let Some(lease) = req.lease_id() {
        options = options.with_lease(lease);
    }
    if req.prev_kv {
        options = options.with_prev_key();
    }
    (req.key, req.value, options)
}

fn delete_options(req: &DeleteRequest) -> (Vec<u8>, ec::DeleteOptions) {
    let (key, end) = key_and_end(&req.range);
    let mut options = ec::DeleteOptions::new();
    if !end.is_empty() {
        options = options.with_range(end);
    }
    if req.prev_kv {
        options = options.with_prev_key();
    }
    (key, options)
}

fn watch_options(req: &WatchRequest) -> (Vec<u8>, ec::WatchOptions) {
    let (key, end) = key_and_end(&req.range);
    let mut options = ec::WatchOptions::new();
    if !end.is_empty() {
        options = options.with_range(end);
    }
    if let Some(revision) = req.start_revision {
        options = options.with_start_revision(revision);
    }
    let mut filters = Vec::new();
    if req.filter_put {
        filters.push(ec::WatchFilterType::NoPut);
    }
    if req.filter_delete {
        filters.push(ec::WatchFilterType::NoDelete);
    }
    if !filters.is_empty() {
        options = options.with_filters(filters);
    }
    if req.prev_kv {
        options = options.with_prev_key();
    }
    if req.progress_notify {
        options = options.with_progress_notify();
    }
    (key, options)
}

fn etcd_txn(txn: Txn) -> ec::Txn {
    use super::{CompareOp, CompareTarget};
    let compares: Vec<ec::Compare> = txn
        .compare
        .into_iter()
        .map(|c| {
            let op = match c.op {
                CompareOp::Equal => ec::CompareOp::Equal,
                CompareOp::NotEqual => ec::CompareOp::NotEqual,
                CompareOp::Less => ec::CompareOp::Less,
                CompareOp::Greater => ec::CompareOp::Greater,
            };
            match c.target {
                CompareTarget::Value(v) => ec::Compare::value(c.key, op, v),
                CompareTarget::Version(v) => ec::Compare::version(c.key, op, v),
                CompareTarget::CreateRevision(r) => ec::Compare::create_revision(c.key, op, r),
                CompareTarget::ModRevision(r) => ec::Compare::mod_revision(c.key, op, r),
                CompareTarget::Lease(l) => ec::Compare::lease(c.key, op, l),
            }
        })
        .collect();
    let ops = |ops: Vec<TxnOp>| -> Vec<ec::TxnOp> {
        ops.into_iter()
            .map(|op| match op {
                TxnOp::Put(p) => {
                    let (key, value, options) = put_options(p);
                    ec::TxnOp::put(key, value, Some(options))
                }
                TxnOp::Delete(d) => {
                    let (key, options) = delete_options(&d);
                    ec::TxnOp::delete(key, Some(options))
                }
                TxnOp::Range(r) => {
                    let (key, options) = get_options(&r);
                    ec::TxnOp::get(key, Some(options))
                }
            })
            .collect()
    };
    ec::Txn::new()
        .when(compares)
        .and_then(ops(txn.success))
        .or_else(ops(txn.failure))
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

fn header(h: Option<&ec::ResponseHeader>) -> Header {
    Header {
        revision: h.map_or(0, |h| h.revision()),
    }
}

fn key_value(kv: &ec::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    }
}

fn range_response(resp: &ec::GetResponse) -> RangeResponse {
    RangeResponse {
        header: header(resp.header()),
        kvs: resp.kvs().iter().map(key_value).collect(),
        count: resp.count(),
        more: resp.more(),
    }
}

fn put_response(resp: &ec::PutResponse) -> PutResponse {
    PutResponse {
        header: header(resp.header()),
        prev_kv: resp.prev_key().map(key_value),
    }
}

fn delete_response(resp: &ec::DeleteResponse) -> DeleteResponse {
    DeleteResponse {
        header: header(resp.header()),
        deleted: resp.deleted(),
        prev_kvs: resp.prev_kvs().iter().map(key_value).collect(),
    }
}

fn txn_response(resp: &ec::TxnResponse) -> Result<TxnResponse> {
    let responses = resp
        .op_responses()
        .into_iter()
        .map(|r| match r {
            ec::TxnOpResponse::Put(p) => Ok(TxnOpResponse::Put(put_response(&p))),
            ec::TxnOpResponse::Delete(d) => Ok(TxnOpResponse::Delete(delete_response(&d))),
            ec::TxnOpResponse::Get(g) => Ok(TxnOpResponse::Range(range_response(&g))),
            ec::TxnOpResponse::Txn(_) => Err(Error::Backend(
                "etcd answered a nested transaction that was never sent".into(),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TxnResponse {
        header: header(resp.header()),
        succeeded: resp.succeeded(),
        responses,
    })
}

fn watch_response(resp: &ec::WatchResponse) -> WatchResponse {
    WatchResponse {
        header: header(resp.header()),
        events: resp
            .events()
            .iter()
            .filter_map(|e| {
                let kind = match e.event_type() {
                    ec::EventType::Put => EventKind::Put,
                    ec::EventType::Delete => EventKind::Delete,
                };
                Some(Event {
                    kind,
                    kv: key_value(e.kv()?),
                    prev_kv: e.prev_kv().map(key_value),
                })
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A one-line description of an `etcd-client` error, with the gRPC message when there is one.
fn describe_etcd_error(err: &ec::Error) -> String {
    match err {
        ec::Error::GRpcStatus(status) => {
            let mut text = status.message().to_owned();
            if let Some(source) = std::error::Error::source(status) {
                text = format!("{text}: {source}");
            }
            if text.is_empty() {
                format!("{:?}", status.code())
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

const GRPC_UNKNOWN: i32 = 2;
const GRPC_INVALID_ARGUMENT: i32 = 3;
const GRPC_OUT_OF_RANGE: i32 = 11;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAVAILABLE: i32 = 14;

/// Maps an `etcd-client` error to the crate's error (see the module docs).
fn map_error(err: ec::Error, endpoints: &[String], lease: Option<LeaseId>) -> Error {
    let unreachable = |reason: String| Error::Unreachable {
        endpoints: endpoints.to_vec(),
        reason,
    };
    match &err {
        ec::Error::TransportError(_) | ec::Error::IoError(_) => {
            unreachable(describe_etcd_error(&err))
        }
        ec::Error::GRpcStatus(status) => {
            let message = status.message();
            // gRPC status codes (`tonic::Code` is not re-exported by `etcd-client`).
            let code = status.code() as i32;
            if message.contains("requested lease not found") {
                return Error::LeaseNotFound {
                    lease: lease.unwrap_or_default(),
                };
            }
            if message.contains("required revision has been compacted") {
                return Error::Compacted {
                    revision: 0,
                    compact_revision: 0,
                };
            }
            if message.contains("required revision is a future revision") {
                return Error::invalid("revision", "is newer than the store's current revision");
            }
            match code {
                GRPC_UNAVAILABLE => unreachable(describe_etcd_error(&err)),
                // A request whose connection broke mid-flight.
                GRPC_UNKNOWN
                    if message.contains("transport error")
                        || message.contains("h2 protocol error")
                        || message.contains("connection") =>
                {
                    unreachable(describe_etcd_error(&err))
                }
                GRPC_INVALID_ARGUMENT | GRPC_OUT_OF_RANGE => {
                    Error::invalid("request", message.trim_start_matches("etcdserver: "))
                }
                _ => Error::Backend(describe_etcd_error(&err)),
            }
        }
        ec::Error::InvalidArgs(msg) => Error::invalid("request", msg.clone()),
        ec::Error::LeaseKeepAliveError(msg) if msg.contains("not found") => Error::LeaseNotFound {
            lease: lease.unwrap_or_default(),
        },
        ec::Error::WatchError(msg) => Error::WatchClosed {
            reason: msg.clone(),
        },
        other => Error::Backend(other.to_string()),
    }
}
