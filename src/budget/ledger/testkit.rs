//! What the ledger's unit tests share: a ledger in a temporary directory, a fixed clock, a
//! price, and helpers that reserve, settle and check the running sums.

use std::path::PathBuf;

use jiff::Zoned;

use super::{Decision, Ledger, RequestId, ReserveInput, Settlement};
use crate::budget::caps::Refusal;
use crate::budget::clock::{Clock, FixedClock};
use crate::budget::money::{Price, Usd};
use crate::budget::ChargeSource;

/// Cents, exactly.
pub fn cents(c: i64) -> Usd {
    Usd(c * 10_000_000_000)
}

/// $1e-6 per prompt token, $1e-5 per completion token: 1000 + 1000 tokens cost $0.011.
pub fn price() -> Price {
    Price {
        prompt: Usd(1_000_000),
        completion: Usd(10_000_000),
        request: Usd::ZERO,
    }
}

pub fn temp_ledger() -> (tempfile::TempDir, PathBuf, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/ledger.sqlite3");
    let ledger = Ledger::open(&path).unwrap();
    (dir, path, ledger)
}

pub fn clock(s: &str) -> FixedClock {
    FixedClock::new(s.parse::<Zoned>().unwrap())
}

pub fn input<'a>(project: &'a str, prompt: u64, max: u32) -> ReserveInput<'a> {
    ReserveInput::new(project, "test/model", prompt, max, price())
}

pub fn rows(l: &Ledger) -> i64 {
    l.connection()
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
        .unwrap()
}

pub fn reserved(d: Decision) -> (RequestId, u32, Usd, Option<u32>) {
    match d {
        Decision::Reserved {
            id,
            max_tokens,
            worst_case,
            lowered_from,
        } => (id, max_tokens, worst_case, lowered_from),
        Decision::Refused(r) => panic!("refused: {r}"),
    }
}

pub fn refused(d: Decision) -> Refusal {
    match d {
        Decision::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Reserves and settles a request costing exactly `charged`.
pub fn spend_settled(l: &mut Ledger, project: &str, charged: Usd, c: &dyn Clock) -> RequestId {
    let (id, ..) = reserved(l.reserve(&input(project, 0, 16), c).unwrap());
    l.settle(id, Settlement::charged(charged, ChargeSource::Usage), c)
        .unwrap();
    id
}

pub fn assert_consistent(l: &Ledger) {
    let diffs = l.check_rollups().unwrap();
    assert!(diffs.is_empty(), "rollups differ: {diffs:#?}");
}

/// A tiny deterministic generator: tests must be reproducible and take no extra crate.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
