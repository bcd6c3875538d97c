//! Typed keys for context values.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

/// A key for [`with_value`](super::with_value) and [`Context::value`](super::Context::value),
/// tied to the type `T` of its value.
///
/// Go keys are `any`, and its docs ask for an unexported key type so that packages cannot
/// collide; the value comes back as `any` and must be type-asserted. Here a key *is* a private
/// identity with a type: declare it as a `static`, and only code that can name the static can
/// set or read its value, which always comes back as a `&T`. Two keys never collide, even with
/// the same name and type; the name is only for `Debug` output.
///
/// Declare keys as `static`, not `const`: each use of a `const` is a new key (clippy's
/// `declare_interior_mutable_const` lint catches the mistake).
///
/// ```
/// use gosync::context::{self, Key};
///
/// static REQUEST_ID: Key<u64> = Key::new("request-id");
/// static USER: Key<String> = Key::new("user");
///
/// let ctx = context::with_value(&context::background(), &REQUEST_ID, 42);
/// let ctx = context::with_value(&ctx, &USER, "gopher".to_string());
/// assert_eq!(ctx.value(&REQUEST_ID), Some(&42));
/// assert_eq!(ctx.value(&USER).map(String::as_str), Some("gopher"));
/// ```
pub struct Key<T> {
    name: &'static str,
    /// Assigned from a global counter on first use; `0` until then.
    id: AtomicU64,
    _value: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// A new key; `name` appears in `Debug` output only.
    ///
    /// ```
    /// static DEPTH: gosync::context::Key<u32> = gosync::context::Key::new("depth");
    /// assert_eq!(DEPTH.name(), "depth");
    /// ```
    pub const fn new(name: &'static str) -> Self {
        Key {
            name,
            id: AtomicU64::new(0),
            _value: PhantomData,
        }
    }

    /// The name given at creation.
    ///
    /// ```
    /// static TRACE: gosync::context::Key<bool> = gosync::context::Key::new("trace");
    /// assert_eq!(TRACE.name(), "trace");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// This key's unique, non-zero id. (Identity only: no other memory depends on it, so
    /// relaxed ordering suffices and the facade is not involved.)
    pub(super) fn id(&self) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .id
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(won) => won,
        }
    }
}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}
