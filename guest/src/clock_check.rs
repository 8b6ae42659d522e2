//! Whether an elector may judge staleness by the storage server's clock when nobody declared
//! how far its front-ends' clocks differ (`server-clock-auto`, the default). It assumes
//! [`AUTO_SKEW_MS`], and only once its own reads have shown the store stamping a rewrite anew;
//! it stops for good at the first reading that breaks what the server's clock promises. A
//! guard against stores that break those promises where one node can see it, not a proof that
//! a store which passes keeps them (docs/design.md, "Server clock").
//!
//! Each rule allows for the stamps' whole seconds, [`AUTO_SKEW_MS`] between the front-end that
//! stamped a write and the one that answered a read, and the drift of both clocks.

use crate::config::SERVER_CLOCK_RESOLUTION_MS;
use crate::io::ServerClock;
use crate::policy::MS;

/// The front-ends' skew assumed without a declaration: what the design advises declaring for
/// AWS S3 and single-server stores.
pub const AUTO_SKEW_MS: u64 = 1_000;

/// Where the check stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No rewrite seen restamped yet.
    #[default]
    Unproven,
    Trusted,
    /// A reading broke a promise (its reason went out once, as the elector's problem).
    Distrusted,
}

/// One GET answered with the server's stamps; instants on our monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reading {
    pub etag: String,
    pub stamps: ServerClock,
    pub sent_at: u64,
    pub received_at: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ClockCheck {
    verdict: Verdict,
    last: Option<Reading>,
}

impl ClockCheck {
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Weighs one reading against the one before it. Returns the reason when this reading is
    /// the one that ends the trust (so the elector reports it once).
    pub fn observe(&mut self, r: Reading, drift_ppm: u32) -> Option<String> {
        if self.verdict == Verdict::Distrusted {
            return None;
        }
        let broken = self.broken_promise(&r, drift_ppm);
        let restamped = self.last.as_ref().is_some_and(|p| p.etag != r.etag && r.stamps.written_unix_s > p.stamps.written_unix_s);
        self.last = Some(r);
        match broken {
            Some(why) => {
                self.verdict = Verdict::Distrusted;
                Some(why)
            }
            None => {
                if restamped {
                    self.verdict = Verdict::Trusted;
                }
                None
            }
        }
    }

    fn broken_promise(&self, r: &Reading, drift_ppm: u32) -> Option<String> {
        let margin = i128::from(SERVER_CLOCK_RESOLUTION_MS + AUTO_SKEW_MS);
        let (written, answered) = (ms(r.stamps.written_unix_s), ms(r.stamps.answered_unix_s));
        // A version is taken before any answer that shows it.
        if written - answered >= margin {
            return Some(format!(
                "its Last-Modified ({}) is later than the Date of the answer that showed it ({})",
                r.stamps.written_unix_s, r.stamps.answered_unix_s
            ));
        }
        let p = self.last.as_ref()?;
        // Between two answers the server's Date moves as our clock does (each answer was made
        // between its request's send and its receipt), both clocks drifting.
        let moved = answered - ms(p.stamps.answered_unix_s);
        let shortest = scale(r.sent_at.saturating_sub(p.received_at), 1_000_000 - 2 * i128::from(drift_ppm));
        let longest = scale(r.received_at.saturating_sub(p.sent_at), 1_000_000 + 2 * i128::from(drift_ppm));
        if moved < shortest - margin || moved > longest + margin {
            return Some(format!(
                "its Date moved {moved} ms between two answers that came {shortest}–{longest} ms apart by this node's clock"
            ));
        }
        if p.etag == r.etag {
            // One version, one stamp.
            return (r.stamps.written_unix_s != p.stamps.written_unix_s).then(|| {
                format!("the same version's Last-Modified changed from {} to {}", p.stamps.written_unix_s, r.stamps.written_unix_s)
            });
        }
        // A new version was taken after the previous read was, which was no earlier than a
        // round trip before its answer: its stamp cannot be older than that answer's Date by
        // more than the round trip and the margin. A store that keeps the first write's stamp
        // on a rewrite fails here, once the object is older than that.
        let round_trip = scale(p.received_at.saturating_sub(p.sent_at), 1_000_000 + 2 * i128::from(drift_ppm));
        if written < ms(p.stamps.answered_unix_s) - round_trip - margin {
            return Some(format!(
                "a version written after a read answered at {} is stamped Last-Modified {}: the server does not stamp a rewrite anew, or its clocks differ by more than {AUTO_SKEW_MS} ms",
                p.stamps.answered_unix_s, r.stamps.written_unix_s
            ));
        }
        None
    }
}

fn ms(unix_s: i64) -> i128 {
    i128::from(unix_s) * 1_000
}

/// Nanoseconds of our clock to milliseconds, times `ppm_of_million` / 10⁶.
fn scale(ns: u64, ppm_of_million: i128) -> i128 {
    i128::from(ns) * ppm_of_million / 1_000_000 / i128::from(MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000 * MS;

    /// A reading of `etag` written at `written` s, answered at `answered` s, sent at `at` s of
    /// our clock and received 100 ms later.
    fn reading(etag: &str, written: i64, answered: i64, at: u64) -> Reading {
        Reading {
            etag: etag.into(),
            stamps: ServerClock { written_unix_s: written, answered_unix_s: answered },
            sent_at: at * S,
            received_at: at * S + 100 * MS,
        }
    }

    fn run(readings: &[Reading]) -> (Verdict, Vec<String>) {
        let mut c = ClockCheck::default();
        let said = readings.iter().filter_map(|r| c.observe(r.clone(), 10_000)).collect();
        (c.verdict().clone(), said)
    }

    /// The readings end the trust, saying why once, in words containing `says`.
    fn assert_distrusted(readings: &[Reading], says: &str) {
        let (v, said) = run(readings);
        assert!(v == Verdict::Distrusted && said.len() == 1 && said[0].contains(says), "{v:?} {said:?}");
    }

    #[test]
    fn a_store_that_restamps_rewrites_and_keeps_time_is_trusted_after_the_first_rewrite() {
        let (v, said) = run(&[reading("a", 1_000, 1_001, 0)]);
        assert_eq!((v, said.len()), (Verdict::Unproven, 0), "one reading proves nothing");
        let (v, said) = run(&[reading("a", 1_000, 1_001, 0), reading("a", 1_000, 1_016, 15)]);
        assert_eq!((v, said.len()), (Verdict::Unproven, 0), "the same version again proves nothing");
        let (v, said) = run(&[reading("a", 1_000, 1_001, 0), reading("b", 1_012, 1_016, 15), reading("c", 1_027, 1_031, 30)]);
        assert_eq!((v, said.len()), (Verdict::Trusted, 0));
    }

    #[test]
    fn a_store_that_keeps_the_first_stamp_on_a_rewrite_is_never_trusted() {
        // Created at 1000 s and read at once: the first rewrite keeps 1000, which the check
        // cannot tell from a write in the same second; the next one can.
        let (v, said) = run(&[reading("a", 1_000, 1_000, 0), reading("b", 1_000, 1_015, 15)]);
        assert_eq!((v, said.len()), (Verdict::Unproven, 0), "an unmoved stamp never earns trust");
        assert_distrusted(
            &[reading("a", 1_000, 1_000, 0), reading("b", 1_000, 1_015, 15), reading("c", 1_000, 1_030, 30)],
            "does not stamp a rewrite anew",
        );
    }

    #[test]
    fn a_date_that_runs_apart_from_our_clock_is_distrusted_for_good() {
        // 15 s of ours, 18 s of the server's: beyond a second's truncation and the skew.
        assert_distrusted(&[reading("a", 1_000, 1_001, 0), reading("b", 1_012, 1_019, 15)], "Date moved 18000 ms");
        // Two seconds apart is within the margin.
        let (v, _) = run(&[reading("a", 1_000, 1_001, 0), reading("b", 1_012, 1_018, 15)]);
        assert_eq!(v, Verdict::Trusted);
        // Trust, once ended, does not return.
        assert_distrusted(
            &[
                reading("a", 1_000, 1_001, 0),
                reading("b", 1_012, 1_019, 15),
                reading("c", 1_027, 1_034, 30),
                reading("d", 1_042, 1_049, 45),
            ],
            "Date moved",
        );
    }

    #[test]
    fn stamps_that_contradict_themselves_are_distrusted() {
        assert_distrusted(&[reading("a", 1_005, 1_001, 0)], "later than the Date");
        assert_distrusted(&[reading("a", 1_000, 1_001, 0), reading("a", 1_003, 1_016, 15)], "same version's Last-Modified changed");
    }
}
