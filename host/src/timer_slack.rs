//! Timer slack: when the next step is due. Many electors in one process each wait on a timer
//! of their own; rounding each wait's end up to a mark of one grid the whole process shares
//! lets electors due at nearly the same time wake the runtime once, and send their requests
//! together. 10,000 groups in one process took about a tenth less CPU, and their renewals
//! alone, spread evenly over 5 s, a fifth less on a 20 ms grid (BENCHMARKS.md, "Timer slack").
//!
//! A step a little late is safe: a leader's belief ends at its lease deadline whether or not a
//! step runs (docs/design.md, "Leader believes it leads"), and late steps are what the
//! simulator's pauses make far longer. It only delays what the step would do, by at most a
//! 64th of the wait and never more than [`MAX_SLACK`]; a leader's steps due by its lease's
//! end are not delayed past it.

use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// The most a wait is lengthened: the grid's step for waits of 1.28 s and more (a renewal at
/// the defaults waits 5 s, a polling follower longer).
pub(crate) const MAX_SLACK: Duration = Duration::from_millis(20);

/// When a wait of `wait` from `now` ends: at `now + wait` rounded up to the next mark of the
/// process's grid, whose step is a 64th of the wait, at most [`MAX_SLACK`]; waits shorter than
/// 64 ms (a retry, a step due at once) are not rounded. A wait due by `lease_end` (a leader's
/// renewal, a retry, the step that steps down) is never pushed past it, nor a renewal onto it.
pub(crate) fn due(now: Instant, wait: Duration, lease_end: Option<Instant>) -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let exact = now + wait;
    let step = (wait / 64).min(MAX_SLACK).as_nanos();
    // Under a millisecond, tokio's timer resolution: nothing to merge.
    if step < 1_000_000 {
        return exact;
    }
    // The first reading of the process: every grid mark is a whole number of steps after it.
    let origin = *ORIGIN.get_or_init(|| now);
    // Before the origin only if a caller's clock is behind the first one's (tokio's paused
    // time in a test): left exact.
    let Some(since) = exact.checked_duration_since(origin) else { return exact };
    let late = (step - since.as_nanos() % step) % step;
    let rounded = exact + Duration::from_nanos(u64::try_from(late).unwrap_or(0));
    match lease_end {
        Some(end) if exact <= end && rounded >= end => exact,
        _ => rounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Waits of many electors that end within one step of each other end at one instant, never
    /// before their exact end and at most one step after it.
    #[test]
    fn nearby_waits_end_together_on_a_mark() {
        let start = Instant::now();
        let wait = Duration::from_secs(5);
        let ends: Vec<Instant> = (0..400u32).map(|i| due(start + MS * i / 20, wait, None)).collect();
        for (i, end) in ends.iter().enumerate() {
            let exact = start + MS * u32::try_from(i).unwrap() / 20 + wait;
            assert!(*end >= exact && *end - exact < MAX_SLACK, "wait {i}: {:?} after its exact end", *end - exact);
        }
        let mut distinct = ends.clone();
        distinct.dedup();
        // 400 waits ending over 20 ms: one or two marks, not 400 wake-ups.
        assert!(distinct.len() <= 2, "{} distinct ends", distinct.len());
        assert!(distinct.windows(2).all(|w| w[1] - w[0] == MAX_SLACK), "marks one step apart: {distinct:?}");
    }

    /// The slack is a 64th of the wait: a 640 ms wait ends at most 10 ms late, and waits under
    /// 64 ms (retries, steps due at once) end exactly.
    #[test]
    fn short_waits_get_proportionally_less_slack_and_the_shortest_none() {
        let start = Instant::now();
        for k in 0..50u32 {
            let now = start + MS * k / 7;
            let wait = Duration::from_millis(640);
            let late = due(now, wait, None) - (now + wait);
            assert!(late < 10 * MS, "{late:?}");
            for wait in [Duration::ZERO, MS, 63 * MS] {
                assert_eq!(due(now, wait, None), now + wait);
            }
        }
        let late: Vec<Duration> = (0..50u32).map(|k| start + MS * k / 7).map(|n| due(n, 640 * MS, None) - (n + 640 * MS)).collect();
        assert!(late.iter().any(|l| !l.is_zero()), "some wait is rounded: {late:?}");
    }

    /// A renewal due before the lease ends is not made late past it (the lease would lapse
    /// before the renewal was sent), nor the step due at its end (which steps down); a wait
    /// that ends past it is rounded as any other.
    #[test]
    fn the_slack_never_carries_a_renewal_past_the_lease_end() {
        let start = Instant::now();
        let wait = Duration::from_secs(5);
        let mut checked = 0;
        for k in 0..200u32 {
            let now = start + MS * k / 10;
            let exact = now + wait;
            let rounded = due(now, wait, None);
            if rounded > exact {
                checked += 1;
                assert_eq!(due(now, wait, Some(rounded)), exact, "a lease ending on the mark");
                assert_eq!(due(now, wait, Some(exact + (rounded - exact) / 2)), exact, "a lease ending before it");
                assert_eq!(due(now, wait, Some(rounded + MS)), rounded, "a lease ending after it");
                assert_eq!(due(now, wait, Some(exact)), exact, "a wait that ends at the lease's end");
                assert_eq!(due(now, wait, Some(exact - MS)), rounded, "a wait that ends after it");
            }
        }
        // 200 waits over 20 ms: all but those ending on a mark are rounded.
        assert!(checked >= 190, "only {checked} of 200 waits rounded");
    }
}
