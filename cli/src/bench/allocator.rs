//! The bench process's memory allocator: mimalloc, as the README advises a process that runs
//! many groups, or glibc's with `S3LECT_BENCH_ALLOCATOR=system`, so one binary measures both.
//! With 10,000 groups glibc's malloc was 23 % of the process's profile, most of it its slow
//! paths (BENCHMARKS.md, "mimalloc for many groups").

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// The variable that picks glibc's allocator; any other value, or none, picks mimalloc.
const VAR: &std::ffi::CStr = c"S3LECT_BENCH_ALLOCATOR";

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// mimalloc or the system's, chosen once, at the process's first allocation: memory must be
/// freed by the allocator that gave it, so the choice never changes after.
pub struct Chosen;

fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => {
            // SAFETY: getenv reads the environment without allocating, and nothing in the bench
            // sets a variable of its own (only its children's), so no write races this read.
            // Threads deciding at once read the same answer.
            let value = unsafe { libc::getenv(VAR.as_ptr()) };
            // SAFETY: getenv's result, when not null, is a NUL-terminated string.
            let system = !value.is_null() && unsafe { std::ffi::CStr::from_ptr(value) } == c"system";
            let chosen = if system { SYSTEM } else { MIMALLOC };
            CHOICE.store(chosen, Ordering::Relaxed);
            chosen
        }
        chosen => chosen,
    }
}

/// The allocator this process runs with, for the rows' labels.
pub fn name() -> &'static str {
    if choice() == SYSTEM { "glibc's malloc" } else { "mimalloc" }
}

// SAFETY: every call forwards to one allocator, the same for the whole process (`choice`).
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { if choice() == SYSTEM { System.alloc(layout) } else { mimalloc::MiMalloc.alloc(layout) } }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { if choice() == SYSTEM { System.alloc_zeroed(layout) } else { mimalloc::MiMalloc.alloc_zeroed(layout) } }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the same allocator, the process's only one.
        unsafe { if choice() == SYSTEM { System.dealloc(ptr, layout) } else { mimalloc::MiMalloc.dealloc(ptr, layout) } }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`.
        unsafe {
            if choice() == SYSTEM { System.realloc(ptr, layout, new_size) } else { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::VAR;
    use std::process::Command;

    /// True if a large allocation is counted by glibc's malloc, which does not see mimalloc's.
    fn glibc_served() -> bool {
        // SAFETY: mallinfo2 only reads glibc's counters.
        let in_use = || unsafe {
            let m = libc::mallinfo2();
            m.uordblks + m.hblkhd
        };
        let before = in_use();
        let held = std::hint::black_box(vec![1u8; 8 << 20]);
        let grew = in_use().saturating_sub(before) >= held.len();
        drop(held);
        grew
    }

    /// The choice is made at a process's first allocation, so each value is tried in a process
    /// of its own: this test binary again, running only the test below.
    #[test]
    fn the_variable_picks_glibc_and_anything_else_mimalloc() {
        for (value, glibc) in [(Some("system"), true), (Some("mimalloc"), false), (Some("System"), false), (None, false)] {
            let mut child = Command::new(std::env::current_exe().unwrap());
            child.args(["allocator::tests::reports_which_allocator_serves", "--exact", "--ignored", "--nocapture"]);
            let var = VAR.to_str().unwrap();
            match value {
                Some(v) => child.env(var, v),
                None => child.env_remove(var),
            };
            let out = child.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{value:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
            let name = if glibc { "glibc's malloc" } else { "mimalloc" };
            assert!(stdout.contains(&format!("served by glibc: {glibc}; named {name}")), "{value:?}: {stdout}");
        }
    }

    #[test]
    #[ignore = "run by the test above, in a process of its own"]
    fn reports_which_allocator_serves() {
        println!("served by glibc: {}; named {}", glibc_served(), super::name());
    }
}
