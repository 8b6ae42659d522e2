//! Leadership hooks as async closures.

use crate::storage::BoxFuture;
use std::future::Future;
use std::sync::Arc;

/// What a hook is told: the fencing term and who leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEvent {
    pub term: u64,
    pub leader_id: String,
}

/// An acquire or lose hook. An acquire hook's error makes the elector resign.
pub type Hook = Arc<dyn Fn(HookEvent) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Wraps an async closure as a [`Hook`].
pub fn hook<F, Fut>(f: F) -> Hook
where
    F: Fn(HookEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}
