//! Building blocks of the text report: lines that know their display width and carry their
//! highlights as byte ranges, and number formatting.

use crate::budget::Usd;
use std::ops::RangeInclusive;

/// Characters Neovim shows in no cell: combining marks, zero-width spaces and joiners,
/// variation selectors (and NUL).
#[rustfmt::skip]
const ZERO_CELLS: [RangeInclusive<u32>; 5] = [
    0..=0, 0x0300..=0x036F, 0x200B..=0x200F, 0x20D0..=0x20FF, 0xFE00..=0xFE0F,
];

/// Characters Neovim shows in two cells: East Asian wide and fullwidth, most emoji.
#[rustfmt::skip]
const TWO_CELLS: [RangeInclusive<u32>; 14] = [
    0x1100..=0x115F, 0x2E80..=0x303E, 0x3041..=0x33FF, 0x3400..=0x4DBF,
    0x4E00..=0x9FFF, 0xA000..=0xA4CF, 0xAC00..=0xD7A3, 0xF900..=0xFAFF,
    0xFE30..=0xFE4F, 0xFF00..=0xFF60, 0xFFE0..=0xFFE6, 0x1F300..=0x1F64F,
    0x1F900..=0x1F9FF, 0x20000..=0x3FFFD,
];

/// Display cells of a character, as Neovim counts them for the common cases: 0 for
/// [`ZERO_CELLS`], 2 for [`TWO_CELLS`], 1 otherwise (the block elements and box drawing used
/// here are narrow).
pub fn char_cells(c: char) -> usize {
    let u = c as u32;
    if ZERO_CELLS.iter().any(|r| r.contains(&u)) {
        0
    } else if TWO_CELLS.iter().any(|r| r.contains(&u)) {
        2
    } else {
        1
    }
}

/// Display cells of a string.
pub fn cells(s: &str) -> usize {
    s.chars().map(char_cells).sum()
}

/// `s` cut to at most `max` cells, with `…` in place of what was cut at the end.
pub fn truncate_end(s: &str, max: usize) -> String {
    if cells(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_cells(c);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` cut to at most `max` cells, with `…` in place of what was cut at the start (paths: the
/// end says most).
pub fn truncate_start(s: &str, max: usize) -> String {
    if cells(s) <= max {
        return s.to_string();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = char_cells(c);
        if used + w + 1 > max {
            break;
        }
        kept.push(c);
        used += w;
    }
    let mut out = String::from("…");
    out.extend(kept.into_iter().rev());
    out
}

/// `1234567` → `1,234,567`.
pub fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A physical quantity for the footprint: 4 decimals below 0.1, 2 below 10, 1 below 100, then whole
/// numbers with thousands separators.
pub fn quantity(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    if x == 0.0 {
        "0".into()
    } else if x.abs() < 0.1 {
        format!("{x:.4}")
    } else if x.abs() < 10.0 {
        format!("{x:.2}")
    } else if x.abs() < 100.0 {
        format!("{x:.1}")
    } else {
        group(x.round() as i64)
    }
}

/// A dollar figure OpenRouter sent as a JSON number, shown exactly like a [`Usd`].
pub fn money_f64(x: f64) -> String {
    if !x.is_finite() {
        return "?".into();
    }
    match Usd::from_cost_f64(x.abs()) {
        Ok(u) if x < 0.0 => format!("-{u}"),
        Ok(u) => u.to_string(),
        Err(_) => format!("${x:.2}"),
    }
}

/// Money in a column of amounts: as [`Usd`] shows it, with zeros past the cents dropped, so
/// `$0.50` stands beside `$5.00` (not `$0.5000`) while `$0.0184` keeps its digits.
pub fn money_column(u: Usd) -> String {
    let mut s = u.to_string();
    if let Some(dot) = s.find('.') {
        while s.len() > dot + 3 && s.ends_with('0') {
            s.pop();
        }
    }
    s
}

/// A whole percentage as shown: `<1%` when money was spent but less than 1% of the cap.
pub fn percent_text(pct: u64, used: Usd) -> String {
    if pct == 0 && used > Usd::ZERO {
        "<1%".into()
    } else {
        format!("{pct}%")
    }
}

/// How full a cap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Below the warn threshold.
    Normal,
    /// From the warn threshold: the user's `warn_at`, 80 % when unset (`FrugalUsageWarn`).
    Warn,
    /// From 100 % (`FrugalUsageOver`).
    Over,
}

/// `used` against `cap`: the whole percentage (rounded down, so 99.9 % never reads as 100 %),
/// and the level: [`Level::Warn`] from `warn_at_milli` thousandths of the cap (the user's
/// `warn_at`, as the once-per-period notice uses it), [`Level::Over`] from the cap. A cap of 0
/// is reached from the start.
pub fn percent(used: Usd, cap: Usd, warn_at_milli: u32) -> (u64, Level) {
    let (u, c) = (i128::from(used.0.max(0)), i128::from(cap.0.max(0)));
    let pct = if c == 0 {
        if u == 0 {
            100
        } else {
            99_999
        }
    } else {
        (u * 100 / c).min(99_999) as u64
    };
    let level = if u >= c {
        Level::Over
    } else if u * 1000 >= c * i128::from(warn_at_milli) {
        Level::Warn
    } else {
        Level::Normal
    };
    (pct, level)
}

/// Filled cells of a bar of `width` cells for `used` against `cap` (rounded down; full only
/// when the cap is reached).
pub fn bar_fill(used: Usd, cap: Usd, width: usize) -> usize {
    let (u, c) = (i128::from(used.0.max(0)), i128::from(cap.0.max(0)));
    if u >= c {
        return width;
    }
    ((u * width as i128 / c) as usize).min(width)
}

/// The eight sparkline levels.
pub const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The sparkline character of `v` against the maximum `max`: `▁` for nothing (shown dimmed),
/// `▂`..`█` for any spend (⌈7 × v / max⌉), `█` for the maximum.
pub fn spark(v: Usd, max: Usd) -> char {
    if v.0 <= 0 || max.0 <= 0 {
        return SPARKS[0];
    }
    let (v, max) = (i128::from(v.0), i128::from(max.0));
    let idx = (v * 7 + max - 1) / max;
    SPARKS[(idx as usize).clamp(1, 7)]
}

/// One line of the report with its highlights (byte ranges into `text`).
#[derive(Debug, Default, Clone)]
pub struct Line {
    /// The text.
    pub text: String,
    /// Display cells of `text`.
    pub cells: usize,
    /// `(byte start, byte end, group)`.
    pub hl: Vec<(usize, usize, &'static str)>,
}

impl Line {
    /// Appends plain text.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self.cells += cells(s);
        self
    }

    /// Appends text highlighted with `group` (`None`: plain). Adjacent ranges of the same group
    /// merge into one.
    pub fn hl(&mut self, s: &str, group: Option<&'static str>) -> &mut Self {
        let start = self.text.len();
        self.push(s);
        let end = self.text.len();
        if let Some(g) = group.filter(|_| end > start) {
            match self.hl.last_mut() {
                Some(last) if last.1 == start && last.2 == g => last.1 = end,
                _ => self.hl.push((start, end, g)),
            }
        }
        self
    }

    /// Spaces up to `col` cells (nothing if already there).
    pub fn pad_to(&mut self, col: usize) -> &mut Self {
        if self.cells < col {
            let n = col - self.cells;
            self.push(&" ".repeat(n));
        }
        self
    }

    /// `s` right-aligned in `width` cells.
    pub fn right(&mut self, s: &str, width: usize, group: Option<&'static str>) -> &mut Self {
        let pad = width.saturating_sub(cells(s));
        self.push(&" ".repeat(pad));
        self.hl(s, group)
    }

    /// `s` left-aligned in `width` cells.
    pub fn left(&mut self, s: &str, width: usize, group: Option<&'static str>) -> &mut Self {
        self.hl(s, group);
        let pad = width.saturating_sub(cells(s));
        self.push(&" ".repeat(pad))
    }
}

/// Words of `text` in lines of at most `width` cells (a longer word gets a line of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cells(&cur) + 1 + cells(word) > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_truncation() {
        assert_eq!(cells("█░▁…"), 4);
        assert_eq!(cells("日本"), 4);
        assert_eq!(cells("é"), 1);
        assert_eq!(cells("e\u{301}"), 1);
        assert_eq!(
            truncate_end("anthropic/claude-sonnet-4.5", 10),
            "anthropic…"
        );
        assert_eq!(truncate_start("/home/dev/project", 8), "…project");
        assert_eq!(truncate_start("/home/日本語", 6), "…本語");
        assert_eq!(truncate_end("short", 10), "short");
    }

    #[test]
    fn numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(-12_345), "-12,345");
        assert_eq!(quantity(0.0), "0");
        assert_eq!(quantity(1.14), "1.14");
        assert_eq!(quantity(0.00285), "0.0029");
        assert_eq!(quantity(42.25), "42.2");
        assert_eq!(quantity(4500.4), "4,500");
        assert_eq!(money_f64(0.0042), "$0.0042");
        assert_eq!(money_f64(12.345), "$12.35");
        assert_eq!(money_f64(-1.5), "-$1.50");
    }

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 6), vec![""]);
    }

    #[test]
    fn highlights_merge_and_count_bytes() {
        let mut l = Line::default();
        l.push("é ")
            .hl("█", Some("A"))
            .hl("█", Some("A"))
            .hl("░", Some("B"));
        assert_eq!(l.hl, vec![(3, 9, "A"), (9, 12, "B")]);
        assert_eq!(l.cells, 5);
        l.right("x", 3, None).pad_to(10);
        assert_eq!(l.cells, 10);
    }
}
