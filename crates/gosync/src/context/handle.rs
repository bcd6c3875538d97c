//! The `Context` handle: a chain of nodes, each sharing a cancellation scope.

use std::any::Any;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::done::{self, Done};
use super::scope::Scope;
use super::{Cause, ContextError, Key};
use crate::chan::Receiver;
use crate::sema::{Origin, WaitKind, WaitRecord};

/// A cancellation signal, maybe a deadline, and values, handed down a call tree; Go's
/// `context.Context`.
///
/// A `Context` is a cheap handle (one `Arc`): clone it to give it to another thread or task.
/// It is `Send + Sync + 'static`. Start from [`background`](super::background) and derive with [`with_cancel`](super::with_cancel),
/// [`with_deadline`](super::with_deadline), [`with_timeout`](super::with_timeout), [`with_value`](super::with_value).
///
/// ```
/// use gosync::context::{self, ContextError};
///
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// let child = ctx.clone();
/// let t = std::thread::spawn(move || child.wait());
/// cancel.cancel();
/// assert_eq!(t.join().unwrap(), ContextError::Canceled);
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

/// One link of a context chain.
struct Node {
    /// The context this one was derived from; `None` for `background` and `todo`.
    parent: Option<Context>,
    /// The cancellation this context shares (its own for `with_cancel`/`with_deadline`, its
    /// parent's for `with_value`, a scope that never ends for the roots).
    scope: Arc<Scope>,
    kind: Kind,
}

impl Drop for Node {
    fn drop(&mut self) {
        // Unlink the ancestors this was the last handle on in a loop, not by recursion, so that
        // a chain of any depth can be dropped on any stack.
        let mut next = self.parent.take();
        while let Some(parent) = next {
            next = match Arc::try_unwrap(parent.node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

pub(super) enum Kind {
    Background,
    Todo,
    Cancel,
    Deadline(Instant),
    Value(Entry),
    WithoutCancel,
}

pub(super) struct Entry {
    pub(super) key: u64,
    pub(super) name: &'static str,
    pub(super) value: Box<dyn Any + Send + Sync>,
}

impl Context {
    pub(super) fn root(kind: Kind) -> Context {
        Context {
            node: Arc::new(Node {
                parent: None,
                scope: Scope::root(),
                kind,
            }),
        }
    }

    /// Registers `waiter` to be completed with `CTX_DONE` when this context ends (see
    /// [`Watch`](super::done::Watch)); `Err` if it has ended already.
    pub(crate) fn watch(
        &self,
        waiter: &crate::loom::Arc<crate::sema::Waiter>,
    ) -> Result<Option<super::done::Watch>, ContextError> {
        super::done::Watch::new(&self.node.scope, waiter)
    }

    /// The cancellation scope this context shares.
    pub(super) fn scope(&self) -> &Arc<Scope> {
        &self.node.scope
    }

    pub(super) fn derive(&self, scope: Arc<Scope>, kind: Kind) -> Context {
        Context {
            node: Arc::new(Node {
                parent: Some(self.clone()),
                scope,
                kind,
            }),
        }
    }

    /// Why the context is done: `None` while it is not, then [`ContextError::Canceled`] or
    /// [`ContextError::DeadlineExceeded`] forever (Go's `Err`).
    ///
    /// A cancellation synchronizes before the `err` call that observes it returns.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// ```
    #[inline]
    pub fn err(&self) -> Option<ContextError> {
        self.node.scope.err()
    }

    /// Why the context was cancelled (Go's `context.Cause`): `None` while it is not done; the
    /// cause given to the cancel function (or deadline) that ended it, if any; otherwise the
    /// [`ContextError`] that [`err`](Self::err) returns.
    ///
    /// ```
    /// use gosync::context;
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert!(ctx.cause().is_none());
    /// cancel.cancel();
    /// assert_eq!(ctx.cause().unwrap().to_string(), "context canceled");
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        let scope = &self.node.scope;
        let err = scope.err()?;
        Some(scope.cause().unwrap_or_else(|| Arc::new(err)))
    }

    /// When the context will be cancelled with `DeadlineExceeded`, if it has a deadline: the
    /// earliest deadline along its chain (Go's `Deadline`).
    ///
    /// ```
    /// use gosync::context;
    /// use std::time::{Duration, Instant};
    ///
    /// let at = Instant::now() + Duration::from_secs(60);
    /// let (ctx, _cancel) = context::with_deadline(&context::background(), at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// assert_eq!(context::background().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.scope.deadline()
    }

    /// The value stored under `key` by the nearest [`with_value`](super::with_value) up the chain, if any
    /// (Go's `Value`). A value set lower in the chain shadows one set higher.
    ///
    /// ```
    /// use gosync::context::{self, Key};
    ///
    /// static NAME: Key<&str> = Key::new("name");
    /// let ctx = context::with_value(&context::background(), &NAME, "outer");
    /// let inner = context::with_value(&ctx, &NAME, "inner");
    /// assert_eq!(inner.value(&NAME), Some(&"inner"));
    /// assert_eq!(ctx.value(&NAME), Some(&"outer"));
    /// assert_eq!(context::background().value(&NAME), None);
    /// ```
    pub fn value<T: 'static>(&self, key: &Key<T>) -> Option<&T> {
        let id = key.id();
        let mut node = &*self.node;
        loop {
            if let Kind::Value(entry) = &node.kind {
                if entry.key == id {
                    // The key's type fixed the value's type when it was stored.
                    if let Some(v) = entry.value.downcast_ref::<T>() {
                        return Some(v);
                    }
                }
            }
            node = &node.parent.as_ref()?.node;
        }
    }

    /// A future that completes, with the context's error, once the context is done (Go's
    /// `<-ctx.Done()`). For the roots it never completes.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes removes its waiter; nothing is lost.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use std::time::Duration;
    ///
    /// # futures::executor::block_on(async {
    /// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
    /// assert_eq!(ctx.done().await, ContextError::DeadlineExceeded);
    /// # });
    /// ```
    #[track_caller]
    pub fn done(&self) -> Done {
        Done::new(self.node.scope.clone(), Origin::here(WaitKind::Context))
    }

    /// The context's done channel (Go's `ctx.Done()`): closed once the context is done, so a
    /// receive from it returns `None` from then on; made on first request and shared by every
    /// later call. For [`background`](super::background), [`todo`](super::todo()) and
    /// [`without_cancel`](super::without_cancel) contexts, which are never done, it is the nil
    /// channel, which never fires — as Go's `Background().Done()` is nil.
    ///
    /// The channel closes when [`wait`](Self::wait) would return: once the context and every
    /// context derived from it are done. A [`Done`] from [`done`](Self::done) is itself a
    /// select case (`recv(ctx.done())`); this is for code that wants the channel as a value, to
    /// keep, pass on, or put in a dynamic [`Select`](crate::chan::Select).
    ///
    /// ```
    /// use gosync::chan::TryRecvError;
    /// use gosync::context;
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// let done = ctx.done_chan();
    /// assert_eq!(done.try_recv(), Err(TryRecvError::Empty));
    /// cancel.cancel();
    /// assert_eq!(done.recv(), None); // closed
    /// assert!(context::background().done_chan().is_nil());
    /// ```
    pub fn done_chan(&self) -> Receiver<()> {
        self.node.scope.done_chan().into()
    }

    /// The same future as [`done`](Self::done), under the name gosync gives every async wait.
    ///
    /// # Cancel safety
    ///
    /// Dropping the pending future takes its waiter out of the context's queue; nothing is
    /// lost, since a context's end is broadcast to every waiter.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let (ctx, cancel) = gosync::context::with_cancel(&gosync::context::background());
    /// cancel.cancel();
    /// ctx.wait_async().await;
    /// # });
    /// ```
    #[track_caller]
    pub fn wait_async(&self) -> Done {
        self.done()
    }

    /// Blocks the calling thread until the context is done; returns its error. For the roots
    /// this never returns.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// std::thread::spawn(move || cancel.cancel());
    /// assert_eq!(ctx.wait(), ContextError::Canceled);
    /// ```
    #[track_caller]
    pub fn wait(&self) -> ContextError {
        done::wait_until(&self.node.scope, None, Origin::here(WaitKind::Context))
            .expect("a wait without deadline ends done")
    }

    /// Blocks the calling thread until the context is done or `timeout` has passed; the
    /// context's error, or `None` on timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ctx = gosync::context::background();
    /// assert_eq!(ctx.wait_timeout(Duration::from_millis(1)), None);
    /// ```
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ContextError> {
        let deadline = Instant::now().checked_add(timeout);
        done::wait_until(&self.node.scope, deadline, Origin::here(WaitKind::Context))
    }

    /// Blocks the calling thread until the context is done or `deadline` has passed; the
    /// context's error, or `None` on timeout.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use std::time::{Duration, Instant};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// cancel.cancel();
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(ctx.wait_deadline(at), Some(ContextError::Canceled));
    /// ```
    #[track_caller]
    pub fn wait_deadline(&self, deadline: Instant) -> Option<ContextError> {
        done::wait_until(
            &self.node.scope,
            Some(deadline),
            Origin::here(WaitKind::Context),
        )
    }

    /// Runs `fut` until it completes or the context is done, whichever comes first:
    /// `Ok(output)`, or `Err` with the context's error, having dropped `fut`.
    ///
    /// A context already done when the returned future is first polled gives `Err` without
    /// polling `fut`; after that, `fut` is polled before the context is checked, so an output
    /// it produces is never thrown away.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future drops `fut` and leaves the context's wait queue.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    ///
    /// # futures::executor::block_on(async {
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(ctx.run(async { 7 }).await, Ok(7));
    /// cancel.cancel();
    /// let never = std::future::pending::<()>();
    /// assert_eq!(ctx.run(never).await, Err(ContextError::Canceled));
    /// # });
    /// ```
    #[track_caller]
    pub fn run<F: IntoFuture>(
        &self,
        fut: F,
    ) -> impl Future<Output = Result<F::Output, ContextError>> {
        let mut done = self.done();
        async move {
            if let Some(err) = done.err() {
                return Err(err);
            }
            let mut fut = pin!(fut.into_future());
            std::future::poll_fn(|cx| {
                if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Ok(v));
                }
                Pin::new(&mut done).poll(cx).map(Err)
            })
            .await
        }
    }

    /// The number of threads and tasks waiting for this context to be done (shared with the
    /// contexts that share its cancellation, such as those made by [`with_value`](super::with_value)).
    ///
    /// ```
    /// let ctx = gosync::context::todo();
    /// assert_eq!(ctx.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> usize {
        self.node.scope.queue.len()
    }

    /// Who waits for this context to be done, where, and for how long, first waiter first.
    ///
    /// ```
    /// use gosync::context::{self, ContextError};
    /// use std::time::Duration;
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// let c = ctx.clone();
    /// let t = std::thread::spawn(move || c.wait());
    /// while ctx.waiting().is_empty() {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(ctx.waiting()[0].kind, gosync::WaitKind::Context);
    /// cancel.cancel();
    /// assert_eq!(t.join().unwrap(), ContextError::Canceled);
    /// ```
    pub fn waiting(&self) -> Vec<WaitRecord> {
        self.node.scope.queue.records()
    }

    /// The number of live cancellable contexts registered with this context's cancellation —
    /// contexts that its cancellation will cancel directly. For tests of the bookkeeping.
    ///
    /// ```
    /// use gosync::context;
    ///
    /// let (parent, _cancel) = context::with_cancel(&context::background());
    /// let child = context::with_cancel(&parent);
    /// assert_eq!(parent.child_count(), 1);
    /// drop(child);
    /// assert_eq!(parent.child_count(), 0);
    /// ```
    #[doc(hidden)]
    pub fn child_count(&self) -> usize {
        self.node.scope.child_count()
    }
}

impl fmt::Debug for Context {
    /// Go's `String` form: the chain from the root, e.g. `context.Background.WithCancel`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chain = Vec::new();
        let mut node = Some(&*self.node);
        while let Some(n) = node {
            chain.push(n);
            node = n.parent.as_ref().map(|p| &*p.node);
        }
        f.write_str("context")?;
        for n in chain.iter().rev() {
            match &n.kind {
                Kind::Background => f.write_str(".Background")?,
                Kind::Todo => f.write_str(".TODO")?,
                Kind::Cancel => f.write_str(".WithCancel")?,
                Kind::Deadline(d) => write!(
                    f,
                    ".WithDeadline({:?} from now)",
                    d.saturating_duration_since(Instant::now())
                )?,
                Kind::Value(e) => write!(f, ".WithValue({})", e.name)?,
                Kind::WithoutCancel => f.write_str(".WithoutCancel")?,
            }
        }
        Ok(())
    }
}
