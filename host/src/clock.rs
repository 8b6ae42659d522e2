//! The monotonic clock passed to the component: CLOCK_BOOTTIME, which is system-wide, so
//! instants exported by one process (CLI `step`) still mean the same thing in the next one on
//! the same boot, and it keeps counting during suspend, as real time does.

use std::time::{Duration, Instant};

/// Nanoseconds of CLOCK_BOOTTIME.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; BOOTTIME exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The host `Instant` corresponding to a component monotonic instant, mapped through a fresh
/// reading of both clocks.
pub fn instant_of(mono_ns: u64) -> Instant {
    let now_ns = boottime_ns();
    let now = Instant::now();
    if mono_ns >= now_ns { now + Duration::from_nanos(mono_ns - now_ns) } else { now - Duration::from_nanos(now_ns - mono_ns) }
}
