//! Leadership hooks as async closures.

use crate::error::BoxError;
use crate::storage::BoxFuture;
use std::future::Future;
use std::sync::Arc;

/// What a hook is told: the fencing term and who leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEvent {
    /// The fencing term of the leadership that starts or ends.
    pub term: u64,
    /// This instance's id (the leader's).
    pub leader_id: String,
}

/// An acquire or lose hook. An acquire hook's error makes the elector resign; the error's
/// text (with its causes) becomes the reported problem.
pub type Hook = Arc<dyn Fn(HookEvent) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// Wraps an async closure as a [`Hook`].
///
/// ```
/// let on_acquire = s3lect::hook(|event| async move {
///     println!("leading in term {}", event.term);
///     Ok(())
/// });
/// let on_lose = s3lect::hook(|_| async { Err("could not detach the address".into()) });
/// # let _ = (on_acquire, on_lose);
/// ```
pub fn hook<F, Fut>(f: F) -> Hook
where
    F: Fn(HookEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}
