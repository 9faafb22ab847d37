//! What the ledger's unit tests share: a ledger in a temporary directory (or at schema v1), a
//! fixed clock, a price, and helpers that reserve, settle, run random operations and check the
//! running sums.

use std::path::{Path, PathBuf};

use jiff::{ToSpan, Zoned};
use rusqlite::TransactionBehavior;

use super::{Decision, Ledger, LedgerError, RequestId, RequestKind, ReserveInput, Settlement};
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

/// Schema v1 to v4 as they shipped (their tables, indexes and triggers), frozen.
const OLD_SCHEMAS: [&str; 4] = [
    include_str!("../../../tests/fixtures/ledger_schema_v1.sql"),
    include_str!("../../../tests/fixtures/ledger_schema_v2.sql"),
    include_str!("../../../tests/fixtures/ledger_schema_v3.sql"),
    include_str!("../../../tests/fixtures/ledger_schema_v4.sql"),
];

/// A ledger at an old schema (`version` 1 to 4), created exactly as that version's code created
/// one (its schema in one immediate transaction, then `user_version`) and left there: it keeps
/// its old columns and triggers until [`Ledger::open`] migrates it.
pub fn old_ledger(path: &Path, version: i64) -> Ledger {
    let mut conn = Ledger::connect(path).unwrap();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    tx.execute_batch(OLD_SCHEMAS[version as usize - 1]).unwrap();
    tx.pragma_update(None, "user_version", version).unwrap();
    tx.commit().unwrap();
    Ledger::over(conn, path)
}

/// Copies every row of `from` into `to` (a ledger at schema `version`) through the columns
/// that version has, so that `to`'s own triggers count them.
pub fn copy_old_columns(from: &Path, to: &Ledger, version: i64) {
    let mut cols =
        "id, project, model, created_at, settled_at, state, reserved, charged, tokens_in,
                tokens_out, tokens_cached, tokens_reasoning, generation_id, charge_source,
                owner_pid, owner_instance"
            .to_string();
    if version >= 3 {
        cols.push_str(", kind, prompt_bytes, key_id, cache_saved");
    }
    if version >= 4 {
        cols.push_str(", sent");
    }
    let conn = to.connection();
    conn.execute("ATTACH DATABASE ?1 AS src", [from.to_str().unwrap()])
        .unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO main.requests ({cols}) SELECT {cols} FROM src.requests ORDER BY id;
         DETACH DATABASE src;"
    ))
    .unwrap();
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

/// Reservations under caps, settlements (with or without token counts), failures and
/// reconciliations of any row, drawn from a seed: the same seed gives the same operations.
pub struct RandomOps {
    rng: Rng,
    open: Vec<RequestId>,
    step: u64,
    /// Also fill the columns v3 added (kind, prompt_bytes, key_id, cache_saved).
    pub v3: bool,
    /// Also mark requests sent and unsent (v4), and release the unsent ones as an exit does.
    pub v4: bool,
}

impl RandomOps {
    pub fn new(seed: u64) -> Self {
        RandomOps {
            rng: Rng(seed),
            open: Vec::new(),
            step: 0,
            v3: true,
            v4: true,
        }
    }

    /// `steps` operations, a few minutes apart on `c`.
    pub fn run(&mut self, l: &mut Ledger, c: &FixedClock, steps: u64) {
        let rng = &mut self.rng;
        let open = &mut self.open;
        let (v3, v4) = (self.v3, self.v4);
        for _ in 0..steps {
            let step = self.step;
            self.step += 1;
            c.advance((rng.below(180) as i64).minutes());
            match rng.below(10) {
                0..=4 => {
                    let project = ["/a", "/b", "/c", "/d"][rng.below(4) as usize];
                    let mut inp = input(project, rng.below(20_000), 200 + rng.below(4000) as u32);
                    inp.model = ["test/model", "test/other"][rng.below(2) as usize];
                    inp.min_useful_tokens = 64;
                    inp.project_caps.daily = Some(cents(20));
                    inp.global_caps.monthly = Some(cents(150));
                    if v3 {
                        inp.prompt_bytes = Some(rng.below(80_000));
                        if rng.below(4) == 0 {
                            inp.kind = RequestKind::Review;
                        }
                        inp.key_id =
                            [None, Some("bound:abc"), Some("named:client")][rng.below(3) as usize];
                    }
                    if let Decision::Reserved { id, .. } = l.reserve(&inp, c).unwrap() {
                        open.push(id);
                        if v4 && rng.below(3) > 0 {
                            l.mark_sent(id).unwrap();
                            if rng.below(4) == 0 {
                                l.mark_unsent(id).unwrap();
                            }
                        }
                    }
                    if v4 && rng.below(40) == 0 {
                        l.release_unsent(c).unwrap();
                        let mut still = l
                            .connection()
                            .prepare("SELECT state = 'reserved' FROM requests WHERE id = ?1")
                            .unwrap();
                        open.retain(|id| still.query_row([id.0], |r| r.get(0)).unwrap());
                    }
                }
                5..=7 if !open.is_empty() => {
                    let id = open.swap_remove(rng.below(open.len() as u64) as usize);
                    let mut s = Settlement::charged(
                        Usd(rng.below(30_000_000_000) as i64),
                        ChargeSource::Usage,
                    );
                    if rng.below(2) == 0 {
                        s.tokens_in = Some(rng.below(20_000));
                        s.tokens_out = Some(rng.below(4_000));
                        s.tokens_cached = Some(rng.below(10_000));
                        if v3 {
                            s.cache_saved = Some(Usd(rng.below(5_000_000_000) as i64));
                        }
                    }
                    l.settle(id, s, c).unwrap();
                }
                8 if !open.is_empty() => {
                    let id = open.swap_remove(rng.below(open.len() as u64) as usize);
                    l.fail(id, c).unwrap();
                }
                _ => {
                    // Reconcile anything, settled or not.
                    let id = RequestId(1 + rng.below(step + 1) as i64);
                    let charged = Usd(rng.below(10_000_000_000) as i64);
                    let mut s = Settlement::charged(charged, ChargeSource::Generation);
                    s.tokens_out = Some(rng.below(4_000));
                    match l.reconcile(id, s, c) {
                        Ok(()) => open.retain(|o| *o != id),
                        Err(LedgerError::NotFound(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }
}

/// Edits a user could make with `sqlite3`: deleting rows, moving them to another instant, project
/// or model, changing a figure the ledger never changes after settling.
pub const HAND_EDITS: &str = "
    DELETE FROM requests WHERE id % 7 = 0;
    UPDATE requests SET created_at = created_at - 3600000 WHERE id % 5 = 0;
    UPDATE requests SET project = '/z' WHERE id % 11 = 0;
    UPDATE requests SET model = 'test/renamed' WHERE id % 13 = 0;
    UPDATE requests SET tokens_in = 7 WHERE id % 3 = 0;
    UPDATE requests SET tokens_cached = 3 WHERE id % 4 = 0;";
