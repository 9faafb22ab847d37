//! What to do after a failed attempt, and how long to wait first (pure): [`next_step`] is the
//! one place that decides it, with the reservation's mark in the ledger at each step.
//!
//! Two kinds of failure are retried, at most [`MAX_RETRIES`] times and [`MAX_WAIT`] of waiting
//! in all, with exponential backoff and jitter (or the wait the server asked for):
//! - answered before any answer byte with 429, 408, 502 or 529, or not connected at all: the
//!   request was not billed, so the retry goes under the same reservation;
//! - cut after the request left without a status (a reset, a timeout, a 524): it may have been
//!   billed, so its reservation is kept until reconciled and the retry needs a new one.
//!
//! Everything else is final: other statuses (a 503 routing refusal among them) are explained,
//! not retried. A 401 is retried once, at once, when the key is printed by a `cmd:` (it may
//! have been rotated); through an `env:` key or none it fails at once, and through a key bound
//! by `:LlmKey create` with a message of its own.

use crate::openrouter::ApiError;
use std::time::Duration;

pub const MAX_RETRIES: u32 = 3;
/// The most waited between attempts, in all, for one edit.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The policy above in one line, as `:checkhealth` shows it (the shim restates nothing).
pub fn policy() -> String {
    format!(
        "429, 408, 502, 529 and failed connections are retried up to {MAX_RETRIES} times ({} s of waiting at most)",
        MAX_WAIT.as_secs()
    )
}

/// Why an attempt is worth another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    RateLimited,
    /// 408, 502 or 529 (the status).
    Busy(u16),
    /// Not connected: the request never left.
    Unreachable,
    /// Cut after the request left: a reset, a timeout, a 524.
    Cut,
}

impl Why {
    /// The failure's class, or `None` when it is final.
    pub fn of(e: &ApiError) -> Option<Why> {
        if e.not_an_answer {
            return None;
        }
        if e.maybe_sent {
            return Some(Why::Cut);
        }
        match e.status {
            None => Some(Why::Unreachable),
            Some(429) => Some(Why::RateLimited),
            Some(s @ (408 | 502 | 529)) => Some(Why::Busy(s)),
            Some(_) => None,
        }
    }

    /// Nothing was billed: the retry may go under the same reservation.
    pub fn unbilled(self) -> bool {
        !matches!(self, Why::Cut)
    }

    /// For the progress line: "rate limited, retrying in 4 s (2/3)".
    pub fn label(self) -> String {
        match self {
            Why::RateLimited => "rate limited".into(),
            Why::Busy(408) => "timed out (408)".into(),
            Why::Busy(529) => "overloaded (529)".into(),
            Why::Busy(s) => format!("upstream error ({s})"),
            Why::Unreachable => "could not connect".into(),
            Why::Cut => "the connection was cut".into(),
        }
    }

    fn base(self) -> Duration {
        match self {
            // A refused connection is usually quick to clear, or not at all.
            Why::Unreachable => Duration::from_millis(500),
            _ => Duration::from_secs(1),
        }
    }
}

/// Why there is no retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// [`MAX_RETRIES`] were made.
    Exhausted,
    /// The server asked for a longer wait than is left of [`MAX_WAIT`].
    TooLong(Duration),
}

/// The retries of one edit so far.
#[derive(Debug, Clone, Default)]
pub struct Retries {
    done: u32,
    waited: Duration,
}

impl Retries {
    /// Retries made so far.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// The wait before the next attempt after a failure of class `why`, or why there is none.
    /// `asked` is the server's `Retry-After`; `jitter` is uniform in [0, 1).
    pub fn next(
        &mut self,
        why: Why,
        asked: Option<Duration>,
        jitter: f64,
    ) -> Result<Duration, Stop> {
        if self.done >= MAX_RETRIES {
            return Err(Stop::Exhausted);
        }
        let jitter = jitter.clamp(0.0, 1.0);
        let wait = match asked {
            // At least what was asked, and a little more so that clients told the same time
            // do not all come back at once.
            Some(a) => a + (a / 10 + Duration::from_millis(250)).mul_f64(jitter),
            // 1 s, 2 s, 4 s (0.5 s, 1 s, 2 s to connect), each ± 25 %.
            None => why
                .base()
                .mul_f64(f64::from(1u32 << self.done) * (0.75 + 0.5 * jitter)),
        };
        if self.waited + wait > MAX_WAIT {
            return Err(if asked.is_some() {
                Stop::TooLong(wait)
            } else {
                Stop::Exhausted
            });
        }
        self.done += 1;
        self.waited += wait;
        Ok(wait)
    }
}

/// Where the request's key comes from: what a 401 means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Bound to the project by `:LlmKey create`.
    Bound,
    /// Printed by a `cmd:` (it may have been rotated: run again once).
    Cmd,
    /// An `env:` variable, read once per session.
    Env,
    /// No key (`api_key = false`).
    NoKey,
}

impl KeySource {
    pub fn of(spec: &crate::settings::KeySpec, bound: bool) -> KeySource {
        if bound {
            KeySource::Bound
        } else if spec.is_cmd() {
            KeySource::Cmd
        } else if spec.env_name().is_some() {
            KeySource::Env
        } else {
            KeySource::NoKey
        }
    }
}

/// The reservation's mark in the ledger (`requests.sent`, durable): what a cancel, a quit, or
/// the next start after a crash does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Nothing is on the wire: released, charged nothing.
    Unsent,
    /// It may have been billed: kept in full until reconciled through `GET /generation`.
    Sent,
}

/// Where a reserved request is.
#[derive(Debug, Clone, Copy)]
pub enum Moment<'a> {
    /// Waiting for the user to confirm a dear request.
    Confirming,
    /// The attempt is about to leave.
    Sending,
    /// The attempt failed.
    Failed(&'a ApiError),
    /// The process quits.
    Quitting,
}

/// Why the request ends without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// A 401 through the key bound by `:LlmKey create` (worded as such).
    BoundKeyRefused,
    /// A 401: the key is wrong, disabled or deleted.
    Unauthorized,
    /// A status (or a 200 that is no answer) that no retry would change.
    Final,
    /// Retries ran out, or the server asks for a longer wait than frugal makes.
    GaveUp(Why, Stop),
}

/// What the request does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask the user; send only on a yes.
    Confirm,
    /// Send the attempt.
    Send,
    /// Run the `cmd:` key again and try at once with the new key (the same key: unauthorized).
    RefreshKey,
    /// Nothing was billed: try again after `after` under the same reservation.
    RetrySameTicket {
        after: Duration,
        why: Why,
    },
    /// It may have been billed: its reservation is kept until reconciled, and after `after`
    /// the request goes through the whole gate again for a reservation of its own.
    Regate {
        after: Duration,
        why: Why,
    },
    Fail(Fail),
    /// At exit: the reservation is released.
    Release,
    /// At exit: the reservation stays, reconciled at the next start.
    Reconcile,
}

/// The next step and the mark the reservation holds during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub step: Step,
    pub mark: Mark,
}

/// What a reserved request does at `moment`: `key` is where its key comes from, `refreshed`
/// whether a `cmd:` key was already run again, `retries` the retries so far (a retry decided
/// here is counted in it), `mark` the reservation's mark now, `jitter` uniform in [0, 1).
pub fn next_step(
    moment: Moment,
    key: KeySource,
    refreshed: bool,
    retries: &mut Retries,
    mark: Mark,
    jitter: f64,
) -> Next {
    let next = |step, mark| Next { step, mark };
    let e = match moment {
        Moment::Confirming => return next(Step::Confirm, Mark::Unsent),
        Moment::Sending => return next(Step::Send, Mark::Sent),
        Moment::Quitting if mark == Mark::Unsent => return next(Step::Release, mark),
        Moment::Quitting => return next(Step::Reconcile, mark),
        Moment::Failed(e) => e,
    };
    if e.status == Some(401) {
        // Refused before anything ran: nothing was billed.
        let step = match key {
            KeySource::Bound => Step::Fail(Fail::BoundKeyRefused),
            KeySource::Cmd if !refreshed => Step::RefreshKey,
            _ => Step::Fail(Fail::Unauthorized),
        };
        return next(step, Mark::Unsent);
    }
    let Some(why) = Why::of(e) else {
        return next(Step::Fail(Fail::Final), Mark::Unsent);
    };
    let mark = if why.unbilled() {
        Mark::Unsent
    } else {
        Mark::Sent
    };
    let step = match retries.next(why, e.retry_after, jitter) {
        Err(stop) => Step::Fail(Fail::GaveUp(why, stop)),
        Ok(after) if why.unbilled() => Step::RetrySameTicket { after, why },
        Ok(after) => Step::Regate { after, why },
    };
    next(step, mark)
}

/// "4 s", "2 min": how long, for a message.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s >= 120 {
        format!("{} min", (s + 30) / 60)
    } else {
        format!("{s} s")
    }
}

/// A number in [0, 1) that differs between calls and processes (no need for a generator).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_checkhealth_shows_is_these_constants() {
        assert_eq!(
            policy(),
            "429, 408, 502, 529 and failed connections are retried up to 3 times (30 s of waiting at most)"
        );
    }

    fn err(status: Option<u16>, maybe_sent: bool) -> ApiError {
        ApiError {
            status,
            code: None,
            message: String::new(),
            upstream: None,
            maybe_sent,
            retry_after: None,
            not_an_answer: false,
        }
    }

    #[test]
    fn classes() {
        assert_eq!(Why::of(&err(Some(429), false)), Some(Why::RateLimited));
        for s in [408, 502, 529] {
            assert_eq!(Why::of(&err(Some(s), false)), Some(Why::Busy(s)));
        }
        assert_eq!(Why::of(&err(None, false)), Some(Why::Unreachable));
        assert_eq!(Why::of(&err(None, true)), Some(Why::Cut));
        assert_eq!(Why::of(&err(Some(524), true)), Some(Why::Cut));
        for s in [400, 401, 402, 403, 404, 500, 503] {
            assert_eq!(Why::of(&err(Some(s), false)), None, "{s}");
        }
        let mut html = err(Some(200), false);
        html.not_an_answer = true;
        assert_eq!(Why::of(&html), None);
        assert!(Why::RateLimited.unbilled() && Why::Unreachable.unbilled());
        assert!(!Why::Cut.unbilled());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_after_three() {
        for j in [0.0, 0.5, 0.999] {
            let mut r = Retries::default();
            let waits: Vec<_> = (0..3)
                .map(|_| r.next(Why::Busy(502), None, j).unwrap())
                .collect();
            for (i, w) in waits.iter().enumerate() {
                let base = 1u64 << i;
                assert!(*w >= Duration::from_millis(750 * base), "{w:?}");
                assert!(*w <= Duration::from_millis(1250 * base), "{w:?}");
            }
            assert_eq!(r.next(Why::Busy(502), None, j), Err(Stop::Exhausted));
            assert_eq!(r.done(), 3);
        }
        let mut r = Retries::default();
        assert!(r.next(Why::Unreachable, None, 0.0).unwrap() < Duration::from_secs(1));
    }

    #[test]
    fn the_asked_wait_is_honoured_within_the_bound() {
        let mut r = Retries::default();
        let w = r
            .next(Why::RateLimited, Some(Duration::from_secs(4)), 0.999)
            .unwrap();
        assert!(
            w >= Duration::from_secs(4) && w < Duration::from_millis(4650),
            "{w:?}"
        );
        assert_eq!(
            r.next(Why::RateLimited, Some(Duration::ZERO), 0.0),
            Ok(Duration::ZERO)
        );
        let long = Duration::from_secs(120);
        assert_eq!(
            r.next(Why::RateLimited, Some(long), 0.0),
            Err(Stop::TooLong(long))
        );
        // 4 s were waited: 26 s more are allowed, 27 s are not.
        assert!(r
            .next(Why::RateLimited, Some(Duration::from_secs(25)), 0.0)
            .is_ok());
        let mut r = Retries::default();
        r.next(Why::RateLimited, Some(Duration::from_secs(4)), 0.0)
            .unwrap();
        assert!(r
            .next(Why::RateLimited, Some(Duration::from_secs(27)), 0.0)
            .is_err());
    }

    /// What happens after each kind of failure, and where the reservation stands meanwhile.
    #[test]
    fn the_step_after_each_moment() {
        use KeySource::*;
        use Mark::*;
        use Moment::*;
        let (ms, secs) = (Duration::from_millis, Duration::from_secs);
        let mut e429 = err(Some(429), false);
        e429.retry_after = Some(secs(4));
        let (e401, e502, e400, e503) = (
            err(Some(401), false),
            err(Some(502), false),
            err(Some(400), false),
            err(Some(503), false),
        );
        let (unreachable, cut, cut524) = (err(None, false), err(None, true), err(Some(524), true));
        let unauthorized = Step::Fail(Fail::Unauthorized);
        let gave_up = |why| Step::Fail(Fail::GaveUp(why, Stop::Exhausted));
        let same = |after, why| Step::RetrySameTicket { after, why };
        /// Name, moment, key, refreshed?, retries so far, mark before → step, mark after.
        type Row<'a> = (&'a str, Moment<'a>, KeySource, bool, u32, Mark, Step, Mark);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("401 cmd: run again", Failed(&e401), Cmd, false, 0, Sent, Step::RefreshKey, Unsent),
            ("401 cmd: once only", Failed(&e401), Cmd, true, 0, Sent, unauthorized, Unsent),
            ("401 env: at once", Failed(&e401), Env, false, 0, Sent, unauthorized, Unsent),
            ("401 no key", Failed(&e401), NoKey, false, 0, Sent, unauthorized, Unsent),
            ("401 bound key", Failed(&e401), Bound, false, 0, Sent,
                Step::Fail(Fail::BoundKeyRefused), Unsent),
            ("429 Retry-After: wait unsent", Failed(&e429), Env, false, 0, Sent,
                same(secs(4), Why::RateLimited), Unsent),
            ("429 beyond the retries", Failed(&e429), Env, false, 3, Sent,
                gave_up(Why::RateLimited), Unsent),
            ("502 before any byte", Failed(&e502), Env, false, 0, Sent,
                same(ms(750), Why::Busy(502)), Unsent),
            ("not connected", Failed(&unreachable), Env, false, 0, Sent,
                same(ms(375), Why::Unreachable), Unsent),
            ("cut after bytes: re-gate", Failed(&cut), Env, false, 0, Sent,
                Step::Regate { after: ms(750), why: Why::Cut }, Sent),
            ("524 cut, no retry left", Failed(&cut524), Env, false, 3, Sent,
                gave_up(Why::Cut), Sent),
            ("400 final", Failed(&e400), Env, false, 0, Sent, Step::Fail(Fail::Final), Unsent),
            ("503 final", Failed(&e503), Cmd, false, 0, Sent, Step::Fail(Fail::Final), Unsent),
            ("confirmation: unsent", Confirming, Env, false, 0, Unsent, Step::Confirm, Unsent),
            ("sending: sent", Sending, Env, false, 0, Unsent, Step::Send, Sent),
            ("quit unsent: released", Quitting, Env, false, 0, Unsent, Step::Release, Unsent),
            ("quit sent: reconciled", Quitting, Env, false, 0, Sent, Step::Reconcile, Sent),
        ];
        for (name, moment, key, refreshed, done, mark, step, after) in rows {
            let mut retries = Retries::default();
            for _ in 0..done {
                retries.next(Why::Busy(502), None, 0.0).unwrap();
            }
            let got = next_step(moment, key, refreshed, &mut retries, mark, 0.0);
            assert_eq!(got, Next { step, mark: after }, "{name}");
        }
        let mut long = err(Some(429), false);
        long.retry_after = Some(secs(120));
        let got = next_step(
            Failed(&long),
            Env,
            false,
            &mut Retries::default(),
            Sent,
            0.0,
        );
        let too_long = Fail::GaveUp(Why::RateLimited, Stop::TooLong(secs(120)));
        assert_eq!(got.step, Step::Fail(too_long));
    }

    #[test]
    fn human_and_jitter() {
        assert_eq!(human(Duration::from_millis(1300)), "1 s");
        assert_eq!(human(Duration::from_secs(120)), "2 min");
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
