//! Bounded waits on a condition: what the demo, the benchmarks and the tests wait with, rather
//! than sleeping and hoping.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `f` every `every` until it yields a value, or gives up with `None` once `limit` has
/// passed (`f` is always asked at least once).
pub async fn until<T, F, Fut>(limit: Duration, every: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
