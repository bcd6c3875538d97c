//! The `select!` and `select_async!` macros (see [`crate::chan`]).

/// Waits on several channel operations at once and runs the arm of the one that proceeds —
/// Go's `select` statement, for threads. For async code use [`select_async!`](crate::select_async).
///
/// ```text
/// select! {
///     recv(rx) -> v => body,           // v: Option<T>, None when rx is closed and drained
///     send(tx, value) -> res => body,  // res: Result<(), SendError<T>>
///     default => body,                 // optional: runs when no arm can proceed now
/// }
/// ```
///
/// * `rx` is a [`Chan`](crate::chan::Chan) or a [`Receiver`](crate::chan::Receiver), `tx` a
///   `Chan` or a [`Sender`](crate::chan::Sender), by value, by reference or as a temporary
///   (`recv(gosync::time::after(d))`); channel and value expressions are evaluated once, in
///   order, before the select starts, as in Go.
/// * When several arms can proceed, one is chosen uniformly at random. An arm on a nil channel
///   never fires. Without `default`, the thread blocks until an arm fires (forever if every arm
///   is nil).
/// * The select is an expression: its value is the value of the arm that ran. Arm bodies are
///   ordinary code in the calling function: `return` returns from it, and `break` and
///   `continue` act on the caller's enclosing loop, as in Go. The value of a send arm that did
///   not fire is dropped, as Go discards it.
/// * At most 32 arms; [`Select`](crate::chan::Select) takes any number.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::select;
///
/// let (a, b) = (Chan::new(1), Chan::<&str>::new(1));
/// a.send(1).unwrap();
/// let got = select! {
///     recv(a) -> v => format!("a: {v:?}"),
///     recv(b) -> v => format!("b: {v:?}"),
///     default => "nothing ready".to_string(),
/// };
/// assert_eq!(got, "a: Some(1)");
///
/// // A loop that ends when the channel closes, as Go's `for { select { ... } }`.
/// let jobs = Chan::new(3);
/// for j in 0..3 { jobs.send(j).unwrap(); }
/// jobs.close();
/// let mut total = 0;
/// loop {
///     select! {
///         recv(jobs) -> j => match j {
///             Some(j) => total += j,
///             None => break,
///         },
///     }
/// }
/// assert_eq!(total, 3);
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(blocking [] [] [(__gosync_a0 0) (__gosync_a1 1) (__gosync_a2 2) (__gosync_a3 3) (__gosync_a4 4) (__gosync_a5 5) (__gosync_a6 6) (__gosync_a7 7) (__gosync_a8 8) (__gosync_a9 9) (__gosync_a10 10) (__gosync_a11 11) (__gosync_a12 12) (__gosync_a13 13) (__gosync_a14 14) (__gosync_a15 15) (__gosync_a16 16) (__gosync_a17 17) (__gosync_a18 18) (__gosync_a19 19) (__gosync_a20 20) (__gosync_a21 21) (__gosync_a22 22) (__gosync_a23 23) (__gosync_a24 24) (__gosync_a25 25) (__gosync_a26 26) (__gosync_a27 27) (__gosync_a28 28) (__gosync_a29 29) (__gosync_a30 30) (__gosync_a31 31)] $($tokens)*)
    };
}

/// [`select!`](crate::select) for async code: the same arms, awaited instead of blocking. Use it
/// inside an `async` block or function, on any executor.
///
/// # Cancel safety
///
/// Dropping the enclosing future while the select waits loses no value: each arm's entry is
/// withdrawn, and a value handed to a receive arm at that moment goes back to the head of its
/// channel.
///
/// ```
/// use gosync::chan::Chan;
/// use gosync::select_async;
///
/// # futures::executor::block_on(async {
/// let (data, quit) = (Chan::new(0), Chan::<()>::new(0));
/// let tx = data.clone();
/// std::thread::spawn(move || {
///     tx.send(7).unwrap();
/// });
/// let v = select_async! {
///     recv(data) -> v => v,
///     recv(quit) -> _ => None,
/// };
/// assert_eq!(v, Some(7));
/// # });
/// ```
#[macro_export]
macro_rules! select_async {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(async [] [] [(__gosync_a0 0) (__gosync_a1 1) (__gosync_a2 2) (__gosync_a3 3) (__gosync_a4 4) (__gosync_a5 5) (__gosync_a6 6) (__gosync_a7 7) (__gosync_a8 8) (__gosync_a9 9) (__gosync_a10 10) (__gosync_a11 11) (__gosync_a12 12) (__gosync_a13 13) (__gosync_a14 14) (__gosync_a15 15) (__gosync_a16 16) (__gosync_a17 17) (__gosync_a18 18) (__gosync_a19 19) (__gosync_a20 20) (__gosync_a21 21) (__gosync_a22 22) (__gosync_a23 23) (__gosync_a24 24) (__gosync_a25 25) (__gosync_a26 26) (__gosync_a27 27) (__gosync_a28 28) (__gosync_a29 29) (__gosync_a30 30) (__gosync_a31 31)] $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        recv($ch:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (recv $n $i ($ch) () ($p) $body)] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        recv($ch:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (recv $n $i ($ch) () ($p) $body)] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        recv($ch:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (recv $n $i ($ch) () ($p) { $body })] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        recv($ch:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!($mode [$($arms)* (recv $n $i ($ch) () ($p) { $body })] [$($def)*] [$($names)*])
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        send($ch:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (send $n $i ($ch) ($v) ($p) $body)] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        send($ch:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (send $n $i ($ch) ($v) ($p) $body)] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        send($ch:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)* (send $n $i ($ch) ($v) ($p) { $body })] [$($def)*] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [($n:ident $i:tt) $($names:tt)*]
        send($ch:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!($mode [$($arms)* (send $n $i ($ch) ($v) ($p) { $body })] [$($def)*] [$($names)*])
    };
    ($mode:ident [$($arms:tt)*] [] [$($names:tt)*]
        default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)*] [$body] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [] [$($names:tt)*]
        default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)*] [$body] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [] [$($names:tt)*]
        default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!($mode [$($arms)*] [{ $body }] [$($names)*] $($rest)*)
    };
    ($mode:ident [$($arms:tt)*] [] [$($names:tt)*]
        default => $body:expr) => {
        $crate::__select_parse!($mode [$($arms)*] [{ $body }] [$($names)*])
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [$($names:tt)*]) => {
        $crate::__select_emit!($mode [$($arms)*] [$($def)*])
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [] $($rest:tt)+) => {
        ::core::compile_error!("select! takes at most 32 arms; use gosync::chan::Select for more")
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)+] [$($names:tt)*] default $($rest:tt)*) => {
        ::core::compile_error!("select! takes at most one `default` arm")
    };
    ($mode:ident [$($arms:tt)*] [$($def:tt)*] [$($names:tt)*] $($rest:tt)+) => {
        ::core::compile_error!(
            "select! arms are `recv(rx) -> v => body`, `send(tx, value) -> res => body` or `default => body`"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (blocking [$(($kind:ident $n:ident $i:tt ($ch:expr) ($($v:expr)?) ($p:pat) $body:block))*] [$($def:block)?]) => {
        match ($(&$ch,)*) {
            ($($n,)*) => {
                $( #[allow(unused_mut)] let mut $n = $crate::__select_arm!($kind $n $($v)?); )*
                let __gosync_index = $crate::chan::__private::select_blocking(
                    &mut [$(&mut $n as &mut dyn $crate::chan::__private::Arm),*],
                    $crate::__select_has_default!($($def)?),
                    $crate::chan::__private::origin(),
                );
                match __gosync_index {
                    $( ::core::option::Option::Some($i) => {
                        #[allow(unused_variables)]
                        let $p = $n.take();
                        $body
                    } )*
                    _ => $crate::__select_default!($($def)?),
                }
            }
        }
    };
    (async [$(($kind:ident $n:ident $i:tt ($ch:expr) ($($v:expr)?) ($p:pat) $body:block))*] [$($def:block)?]) => {
        match ($(&$ch,)*) {
            ($($n,)*) => {
                $( #[allow(unused_mut)] let mut $n = $crate::__select_arm!($kind $n $($v)?); )*
                let mut __gosync_state = $crate::chan::__private::SelectState::new(
                    $crate::__select_has_default!($($def)?),
                    $crate::chan::__private::origin(),
                );
                let __gosync_index = $crate::chan::__private::poll_fn(|__gosync_cx| {
                    __gosync_state.poll(
                        &mut [$(&mut $n as &mut dyn $crate::chan::__private::Arm),*],
                        __gosync_cx,
                    )
                })
                .await;
                match __gosync_index {
                    $( ::core::option::Option::Some($i) => {
                        #[allow(unused_variables)]
                        let $p = $n.take();
                        $body
                    } )*
                    _ => $crate::__select_default!($($def)?),
                }
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_arm {
    (recv $n:ident) => {
        $crate::chan::__private::RecvArm::new($n)
    };
    (send $n:ident $v:expr) => {
        $crate::chan::__private::SendArm::new($n, $v)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_has_default {
    () => {
        false
    };
    ($def:block) => {
        true
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_default {
    () => {
        ::core::unreachable!("select fired an arm that does not exist")
    };
    ($def:block) => {
        $def
    };
}
