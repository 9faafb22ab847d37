//! Finding a SEARCH section in the buffer.
//!
//! Models copy the SEARCH text "exactly" only most of the time: they drop
//! trailing blanks, re-indent a snippet they lifted out of a nested scope, or
//! add a blank line at either end. We try progressively looser comparisons and
//! stop at the first that matches anywhere, so a looser rule never overrides a
//! stricter hit elsewhere. When several places match, the user's selection
//! decides, because that is where they asked for the edit.
//!
//! This module works on plain line slices so it can be used (and tested)
//! without the parser or Neovim.

mod elided;

pub use elided::{elision, Elision};
use elided::{locate_elided, refuse_elided_replace};

/// Where a SEARCH section was found, and what to put there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// First matched line (0-based index into `lines`).
    pub start: usize,
    /// One past the last matched line.
    pub end: usize,
    /// The replacement, re-indented to the buffer's indentation when the match was indentation-tolerant.
    pub new_lines: Vec<String>,
    /// How the match was found.
    pub how: MatchKind,
}

/// How the match was found, strictest first; lets the caller tell the user
/// when the model's SEARCH text wasn't an exact copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Every line equal.
    Exact,
    /// Equal once trailing whitespace is ignored.
    TrailingWhitespace,
    /// Equal once surrounding whitespace is ignored, with one consistent indentation change.
    Indentation,
}

/// Why a block could not be placed. Displayed after the block's title, e.g.
/// `block "x" not shown: <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// SEARCH has no non-blank line (but elisions), so it would match anywhere.
    #[error("its SEARCH shows no line to look for")]
    EmptySearch,
    /// No (unclaimed) place in `lines` matches SEARCH.
    #[error("it matched nowhere in the buffer")]
    NotFound,
    /// SEARCH matches only lines that an earlier block of the answer (named) changes
    /// differently: both were written against the same text.
    #[error("it changes some of the lines the block \"{0}\" changes")]
    Overlaps(String),
    /// The same block again: applying it to the first one's text would apply it twice.
    #[error("it repeats the block \"{0}\"")]
    Repeats(String),
    /// SEARCH and REPLACE elide text (`...`) a different number of times, so which elided
    /// lines go where in the replacement is unclear.
    #[error("its SEARCH elides lines (\"...\") {search} time(s) and its REPLACE {replace}: which lines to keep is unclear")]
    ElisionUnpaired { search: usize, replace: usize },
    /// The lines around SEARCH's elisions match in this many places (none in the selection
    /// alone).
    #[error("the lines around its \"...\" match in {0} places")]
    ElisionAmbiguous(usize),
    /// Proving where SEARCH fits would take more than [`WORK_BUDGET`] comparisons: its lines
    /// recur all over the buffer. Not placed rather than freezing the backend.
    #[error("finding where it goes would take too long (its lines recur all over the file)")]
    TooCostly,
    /// REPLACE stands this line for lines it does not show while SEARCH shows them all:
    /// accepting it would delete them.
    #[error(
        "its REPLACE has \"{0}\" where SEARCH shows every line: accepting it would delete them"
    )]
    ElidedReplace(String),
}

/// The most work placing one SEARCH may cost, in comparisons of a buffer line with a SEARCH
/// line, where that work is not bounded by the lines' count alone: checking the indentation of
/// the places whose text matches, and chaining an elided SEARCH's parts. Finding where the text
/// matches is linear and not counted. Counted, not timed, so a block is placed or refused the
/// same on every machine; about ten milliseconds at most (`cargo bench --bench edit_place`).
pub const WORK_BUDGET: u64 = 1_000_000;

/// How blocks are placed, for `:checkhealth`: the bound above in words.
pub fn placement_policy() -> String {
    format!(
        "a block is placed in one pass over its file; one whose place would take over {} line comparisons is reported unmatched (too costly to place)",
        WORK_BUDGET
    )
}

/// `lines`: the buffer (or a window of it). `prefer`: the selected range
/// [start, end) in the same indices, toward which ambiguous matches are
/// resolved. `taken`: ranges [start,end) already claimed by earlier blocks of
/// the same answer — a match overlapping any of them is skipped (so two blocks
/// with identical SEARCH text land on successive occurrences).
///
/// Strategies, stopping at the first that finds any unclaimed match:
/// exact lines, then lines equal up to trailing whitespace, then lines equal
/// up to surrounding whitespace with a consistent indentation change (the
/// replacement is then re-indented the same way). If none matches, the same
/// again with the blank lines at either end of SEARCH dropped.
///
/// The places whose text matches are found in one pass (Knuth–Morris–Pratt over lines, no
/// allocation per line), so a large buffer costs about two string comparisons per line
/// whatever the answer holds; only checking the indentation of those places, and chaining an
/// elided SEARCH's parts, can cost more, and that is paid from [`WORK_BUDGET`]: a block that
/// would cost more is refused ([`LocateError::TooCostly`]).
///
/// SEARCH may elide text with lines like `...` or `# ... existing code ...` (see
/// [`elision`]): when it matches nowhere as it is, its parts around the elisions are looked
/// for in order (each the nearest after the one before), and must be found in one place
/// only (or only one inside `prefer`). REPLACE then needs as many elisions, each standing
/// for the lines its SEARCH elision matched, which are kept. A REPLACE that elides with a
/// comment where SEARCH shows every line is refused: accepting it would delete code.
pub fn locate(
    lines: &[String],
    search: &[String],
    replace: &[String],
    prefer: (usize, usize),
    taken: &[(usize, usize)],
) -> Result<Located, LocateError> {
    locate_within(lines, search, replace, prefer, taken, WORK_BUDGET)
}

/// [`locate`] with `budget` comparisons at most where [`WORK_BUDGET`] says.
fn locate_within(
    lines: &[String],
    search: &[String],
    replace: &[String],
    prefer: (usize, usize),
    taken: &[(usize, usize)],
    budget: u64,
) -> Result<Located, LocateError> {
    if search.iter().all(|l| is_blank(l)) {
        return Err(LocateError::EmptySearch);
    }
    let mut place = Place {
        lines,
        prefer,
        taken: Taken::new(taken),
        budget: Budget { left: budget },
    };
    match locate_literal(&mut place, search, replace) {
        Ok(found) => {
            refuse_elided_replace(search, replace)?;
            Ok(found)
        }
        Err(LocateError::NotFound) if search.iter().any(|l| elision(l).is_some()) => {
            locate_elided(&mut place, search, replace)
        }
        Err(e) => Err(e),
    }
}

/// Where one block is being placed: the lines, the selection ambiguous matches resolve toward,
/// the ranges earlier blocks claimed, and the work it may still cost.
struct Place<'a> {
    lines: &'a [String],
    prefer: (usize, usize),
    taken: Taken,
    budget: Budget,
}

/// [`locate`] without elisions: SEARCH as it is, then without its blank ends.
fn locate_literal(
    place: &mut Place<'_>,
    search: &[String],
    replace: &[String],
) -> Result<Located, LocateError> {
    if let Some(found) = locate_with(place, search, replace)? {
        return Ok(found);
    }

    // Models often add a blank line at either end of SEARCH that the buffer
    // doesn't have there. Retry without them. Not all blank, so `core` is non-empty.
    let lead = search.iter().take_while(|l| is_blank(l)).count();
    let trail = search.iter().rev().take_while(|l| is_blank(l)).count();
    if lead == 0 && trail == 0 {
        return Err(LocateError::NotFound);
    }
    let core = &search[lead..search.len() - trail];
    // The same padding usually appears in REPLACE too (it was context, copied
    // over); drop as many blank lines from REPLACE's ends as we dropped from
    // SEARCH's, so they aren't inserted into the buffer as new lines.
    let r_lead = replace.iter().take_while(|l| is_blank(l)).count().min(lead);
    let r_trail = replace[r_lead..]
        .iter()
        .rev()
        .take_while(|l| is_blank(l))
        .count()
        .min(trail);
    let core_replace = &replace[r_lead..replace.len() - r_trail];
    locate_with(place, core, core_replace)?.ok_or(LocateError::NotFound)
}

/// Strategies (1)-(3) for one SEARCH text.
fn locate_with(
    place: &mut Place<'_>,
    search: &[String],
    replace: &[String],
) -> Result<Option<Located>, LocateError> {
    let (lines, prefer) = (place.lines, place.prefer);
    let m = search.len();
    for how in [
        MatchKind::Exact,
        MatchKind::TrailingWhitespace,
        MatchKind::Indentation,
    ] {
        let starts = occurrences(lines, search, how)
            .into_iter()
            .filter(|&i| !place.taken.overlaps(i, i + m));
        let (start, new_lines) = match how {
            MatchKind::Exact | MatchKind::TrailingWhitespace => match best(starts, m, prefer) {
                Some(start) => (start, replace.to_vec()),
                None => continue,
            },
            // The text matches at these starts; the indentation is checked nearest first, so
            // the first that fits is the one `best` would choose among all that fit.
            MatchKind::Indentation => {
                let mut starts: Vec<usize> = starts.collect();
                starts.sort_unstable_by_key(|&i| preference(i, m, prefer));
                let mut fit = None;
                for i in starts {
                    if let Some(shift) = place.budget.indentation(&lines[i..i + m], search, None)? {
                        fit = Some((i, shift));
                        break;
                    }
                }
                match fit {
                    Some((start, shift)) => {
                        (start, replace.iter().map(|l| shift.apply(l)).collect())
                    }
                    None => continue,
                }
            }
        };
        return Ok(Some(Located {
            start,
            end: start + m,
            new_lines,
            how,
        }));
    }
    Ok(None)
}

/// Whether two lines are equal under a strategy's text comparison (for
/// [`MatchKind::Indentation`], the text only: the indentation is checked apart).
fn same_text(how: MatchKind, a: &str, b: &str) -> bool {
    match how {
        MatchKind::Exact => a == b,
        MatchKind::TrailingWhitespace => a.trim_end() == b.trim_end(),
        MatchKind::Indentation => a.trim() == b.trim(),
    }
}

/// Every start where `search`'s text occurs in `lines` under `how`, ascending: Knuth–Morris–
/// Pratt over lines, so at most about 2 × (lines + search) line comparisons whatever the text
/// (comparing each start's window in turn costs lines × search on repetitive text).
fn occurrences(lines: &[String], search: &[String], how: MatchKind) -> Vec<usize> {
    let m = search.len();
    if m == 0 || m > lines.len() {
        return Vec::new();
    }
    let eq = |a: &str, b: &str| same_text(how, a, b);
    // border[j]: the length of the longest proper prefix of search[..=j] that is also its
    // suffix.
    let mut border = vec![0usize; m];
    let mut k = 0;
    for j in 1..m {
        k = extend(k, &search[j], search, &border, eq);
        border[j] = k;
    }
    let mut out = Vec::new();
    let mut k = 0;
    for (i, line) in lines.iter().enumerate() {
        k = extend(k, line, search, &border, eq);
        if k == m {
            out.push(i + 1 - m);
            k = border[m - 1];
        }
    }
    out
}

/// One step of [`occurrences`]: how much of `search` is matched after `line`, `k` before it.
fn extend(
    mut k: usize,
    line: &str,
    search: &[String],
    border: &[usize],
    eq: impl Fn(&str, &str) -> bool,
) -> usize {
    loop {
        if eq(line, &search[k]) {
            return k + 1;
        }
        if k == 0 {
            return 0;
        }
        k = border[k - 1];
    }
}

/// The work left for one [`locate`]: see [`WORK_BUDGET`].
struct Budget {
    left: u64,
}

impl Budget {
    fn spend(&mut self, work: usize) -> Result<(), LocateError> {
        self.left = self
            .left
            .checked_sub(work as u64)
            .ok_or(LocateError::TooCostly)?;
        Ok(())
    }

    /// [`indentation_fit`], paying for the lines it compared.
    fn indentation<'a>(
        &mut self,
        window: &'a [String],
        search: &'a [String],
        shift: Option<Shift<'a>>,
    ) -> Result<Option<Shift<'a>>, LocateError> {
        let (shift, compared) = indentation_fit(window, search, shift);
        self.spend(compared)?;
        Ok(shift)
    }
}

/// The ranges claimed by earlier blocks, merged and sorted, to tell in a few steps whether a
/// place overlaps one (empty ranges claim nothing).
struct Taken(Vec<(usize, usize)>);

impl Taken {
    fn new(taken: &[(usize, usize)]) -> Self {
        let mut ranges: Vec<(usize, usize)> =
            taken.iter().copied().filter(|&(a, b)| a < b).collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Taken(merged)
    }

    /// Whether [start, end) overlaps a claimed range.
    fn overlaps(&self, start: usize, end: usize) -> bool {
        let i = self.0.partition_point(|&(_, b)| b <= start);
        self.0.get(i).is_some_and(|&(a, _)| a < end)
    }
}

/// The key that orders places: fully inside `prefer` first, then the one starting closest to
/// `prefer.0`, ties to the earlier one. Inside `prefer` the closest is also the earliest.
fn preference(i: usize, m: usize, prefer: (usize, usize)) -> (bool, usize, usize) {
    let (p0, p1) = prefer;
    let inside = i >= p0 && i + m <= p1;
    (!inside, i.abs_diff(p0), i)
}

/// Among the matching starts, the first by [`preference`].
fn best(starts: impl Iterator<Item = usize>, m: usize, prefer: (usize, usize)) -> Option<usize> {
    starts.min_by_key(|&i| preference(i, m, prefer))
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// The leading whitespace of `line`.
fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// An indentation change: strip the leading `from`, put `to` in its place.
/// Borrowed from the two lines it was derived from, so checking a candidate
/// allocates nothing.
#[derive(Debug, Clone, Copy)]
struct Shift<'a> {
    from: &'a str,
    to: &'a str,
}

impl<'a> Shift<'a> {
    /// The change that turns the indentation `s` (search) into `b` (buffer):
    /// add the extra if `s` is a prefix of `b`, strip the surplus if `b` is a
    /// prefix of `s`, otherwise (tabs vs spaces) swap `s` for `b` wholesale.
    ///
    /// The add/strip forms let lines indented less than the first one follow
    /// the change too; they are only used when they actually reproduce `b`
    /// from `s` (always true for pure spaces or pure tabs), so a mixed
    /// indentation falls back to the swap instead of failing.
    fn between(s: &'a str, b: &'a str) -> Self {
        if let Some(extra) = b.strip_prefix(s) {
            let add = Shift {
                from: "",
                to: extra,
            };
            if add.maps(s, b) {
                return add;
            }
        } else if let Some(surplus) = s.strip_prefix(b) {
            let strip = Shift {
                from: surplus,
                to: "",
            };
            if strip.maps(s, b) {
                return strip;
            }
        }
        Shift { from: s, to: b }
    }

    /// Whether this change turns the indentation `s` into exactly `b`.
    fn maps(&self, s: &str, b: &str) -> bool {
        match s.strip_prefix(self.from) {
            Some(rest) => b.starts_with(self.to) && b[self.to.len()..] == *rest,
            None => false,
        }
    }

    /// Re-indent one REPLACE line. Blank lines are left alone, and so are
    /// lines that don't start with what is to be stripped (nothing sensible to
    /// remove from them).
    fn apply(&self, line: &str) -> String {
        if is_blank(line) {
            return line.to_string();
        }
        match line.strip_prefix(self.from) {
            Some(rest) => format!("{}{}", self.to, rest),
            None => line.to_string(),
        }
    }
}

/// Strategy (3): every line equal after trimming both ends, and every
/// non-blank buffer line's indentation derived from its SEARCH line's by the
/// same change (taken from the first non-blank line). Returns that change.
///
/// The consistency check keeps us from matching code whose nesting differs,
/// where re-indenting the replacement would produce wrong structure.
///
/// Held to `shift` when given (parts of one elided SEARCH share one change). Returns also how
/// many pairs of lines it compared, the work it cost.
fn indentation_fit<'a>(
    window: &'a [String],
    search: &'a [String],
    mut shift: Option<Shift<'a>>,
) -> (Option<Shift<'a>>, usize) {
    for (n, (b, s)) in window.iter().zip(search).enumerate() {
        let (b_text, s_text) = (b.trim(), s.trim());
        if b_text != s_text {
            return (None, n + 1);
        }
        if s_text.is_empty() {
            continue;
        }
        let (b_indent, s_indent) = (indent(b), indent(s));
        match shift {
            None => shift = Some(Shift::between(s_indent, b_indent)),
            Some(sh) => {
                if !sh.maps(s_indent, b_indent) {
                    return (None, n + 1);
                }
            }
        }
    }
    (shift, window.len().min(search.len()))
}

/// Whether [start, end) overlaps any claimed range; empty ranges claim nothing. The plain
/// definition that [`Taken`] answers quickly.
#[cfg(test)]
fn overlaps_taken(start: usize, end: usize, taken: &[(usize, usize)]) -> bool {
    taken.iter().any(|&(a, b)| a < b && a < end && start < b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::plan::*;

    fn s(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    const ALL: (usize, usize) = (0, usize::MAX);

    fn found(start: usize, end: usize, new_lines: &[&str], how: MatchKind) -> Located {
        Located {
            start,
            end,
            new_lines: s(new_lines),
            how,
        }
    }

    #[test]
    fn exact() {
        let buf = s(&["a", "b", "c", "d"]);
        assert_eq!(
            locate(&buf, &s(&["b", "c"]), &s(&["B"]), ALL, &[]),
            Ok(found(1, 3, &["B"], MatchKind::Exact))
        );
    }

    #[test]
    fn trailing_whitespace() {
        let buf = s(&["fn f() {  ", "    x();\t", "}"]);
        let search = s(&["fn f() {", "    x();", "}  "]);
        assert_eq!(
            locate(&buf, &search, &s(&["fn g() {}"]), ALL, &[]),
            Ok(found(0, 3, &["fn g() {}"], MatchKind::TrailingWhitespace))
        );
    }

    #[test]
    fn stricter_strategy_wins_even_outside_the_selection() {
        let buf = s(&["x  ", "y", "x"]);
        // The trailing-whitespace match at 0 is inside the selection, but the
        // exact one at 2 wins because exact is tried first.
        assert_eq!(
            locate(&buf, &s(&["x"]), &s(&["z"]), (0, 1), &[]),
            Ok(found(2, 3, &["z"], MatchKind::Exact))
        );
    }

    #[test]
    fn indentation_deeper_in_buffer() {
        let buf = s(&[
            "impl X {",
            "      fn f() {",
            "",
            "          g();",
            "      }",
            "}",
        ]);
        let search = s(&["  fn f() {", "  ", "      g();", "  }"]);
        let replace = s(&["  fn f() {", "", "      h();", "    ", "  }", "done"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]),
            Ok(found(
                1,
                5,
                &[
                    "      fn f() {",
                    "",
                    "          h();",
                    "    ",
                    "      }",
                    "    done"
                ],
                MatchKind::Indentation
            ))
        );
    }

    #[test]
    fn indentation_shallower_in_buffer() {
        let buf = s(&["if x then", "    y()", "end"]);
        let search = s(&["        if x then", "            y()", "        end"]);
        let replace = s(&[
            "        if x then",
            "            z()",
            "  odd",
            "        end",
        ]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]),
            Ok(found(
                0,
                3,
                // "  odd" doesn't start with the 8-space surplus: left alone.
                &["if x then", "    z()", "  odd", "end"],
                MatchKind::Indentation
            ))
        );
    }

    #[test]
    fn indentation_tabs_vs_spaces() {
        let buf = s(&["fn f() {", "\tlet a = 1;", "\tlet b = 2;", "}"]);
        let search = s(&["    let a = 1;", "    let b = 2;"]);
        let replace = s(&["    let a = 10;", "    let b = 20;", "x"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]),
            Ok(found(
                1,
                3,
                &["\tlet a = 10;", "\tlet b = 20;", "x"],
                MatchKind::Indentation
            ))
        );
    }

    #[test]
    fn inconsistent_indentation_is_not_a_match() {
        let buf = s(&["    a", "    b"]);
        let search = s(&["a", "  b"]);
        assert_eq!(
            locate(&buf, &search, &s(&["c"]), ALL, &[]),
            Err(LocateError::NotFound)
        );
    }

    /// Buffer, SEARCH, selection, the start picked, why.
    type Pick = (
        &'static [&'static str],
        &'static [&'static str],
        (usize, usize),
        usize,
        &'static str,
    );

    /// Several matches: which one the selection picks.
    #[test]
    fn ambiguous_matches_resolve_toward_the_selection() {
        const XAXBX: &[&str] = &["x", "a", "x", "b", "x"];
        const FAR: &[&str] = &["x", "a", "b", "c", "x", "d", "e", "x"];
        #[rustfmt::skip]
        let cases: [Pick; 7] = [
            (XAXBX, &["x"], (2, 4), 2, "inside the selection"),
            (XAXBX, &["x"], (3, 5), 4, "inside the selection"),
            // A match only partly inside the selection doesn't count as inside.
            (&["x", "y", "q", "x", "y"], &["x", "y"], (1, 5), 3, "wholly inside"),
            // Outside the selection: the nearest start to the selection's start.
            (FAR, &["x"], (5, 7), 4, "nearest before"),
            (FAR, &["x"], (1, 2), 0, "nearest"),
            (FAR, &["x"], (2, 3), 0, "tie (distance 2 either way): the earlier one"),
            (FAR, &["x"], (100, 3), 7, "out-of-range or reversed: no panic"),
        ];
        for (buf, search, sel, start, why) in cases {
            assert_eq!(
                locate(&s(buf), &s(search), &[], sel, &[]).map(|l| l.start),
                Ok(start),
                "{why}: {search:?} in {buf:?} selecting {sel:?}"
            );
        }
    }

    #[test]
    fn taken_ranges_are_skipped() {
        let buf = s(&["x", "y", "x", "y", "x", "y"]);
        let search = s(&["x", "y"]);
        let first = locate(&buf, &search, &[], ALL, &[]);
        assert_eq!(first.as_ref().map(|l| (l.start, l.end)), Ok((0, 2)));
        let second = locate(&buf, &search, &[], ALL, &[(0, 2)]);
        assert_eq!(second.map(|l| (l.start, l.end)), Ok((2, 4)));
        // Overlap by one line is enough to skip; empty ranges claim nothing.
        let third = locate(&buf, &search, &[], ALL, &[(0, 2), (3, 4), (5, 5)]);
        assert_eq!(third.map(|l| (l.start, l.end)), Ok((4, 6)));
        assert_eq!(
            locate(&buf, &search, &[], ALL, &[(0, 6)]),
            Err(LocateError::NotFound)
        );
    }

    #[test]
    fn taken_exact_match_falls_through_to_looser_strategy() {
        let buf = s(&["x", "x  "]);
        assert_eq!(
            locate(&buf, &s(&["x"]), &s(&["y"]), ALL, &[(0, 1)]),
            Ok(found(1, 2, &["y"], MatchKind::TrailingWhitespace))
        );
    }

    #[test]
    fn blank_padded_search() {
        let buf = s(&["a", "foo", "bar", "b"]);
        let search = s(&["", "foo", "bar", "  "]);
        // Matching padding in REPLACE is dropped too...
        assert_eq!(
            locate(&buf, &search, &s(&["", "FOO", ""]), ALL, &[]),
            Ok(found(1, 3, &["FOO"], MatchKind::Exact))
        );
        // ...but no more of it than SEARCH had, and only if blank.
        assert_eq!(
            locate(&buf, &search, &s(&["", "", "FOO", "x"]), ALL, &[]),
            Ok(found(1, 3, &["", "FOO", "x"], MatchKind::Exact))
        );
        // Deletion: REPLACE is nothing but the padding.
        assert_eq!(
            locate(&buf, &search, &s(&["", ""]), ALL, &[]),
            Ok(found(1, 3, &[], MatchKind::Exact))
        );
        // Padding plus re-indentation.
        let buf = s(&["    foo", "    bar"]);
        assert_eq!(
            locate(&buf, &search, &s(&["", "baz", ""]), ALL, &[]),
            Ok(found(0, 2, &["    baz"], MatchKind::Indentation))
        );
    }

    #[test]
    fn padding_kept_when_it_matches() {
        let buf = s(&["a", "", "foo", "b"]);
        assert_eq!(
            locate(&buf, &s(&["", "foo"]), &s(&["", "x"]), ALL, &[]),
            Ok(found(1, 3, &["", "x"], MatchKind::Exact))
        );
    }

    #[test]
    fn not_found() {
        let buf = s(&["a", "b"]);
        assert_eq!(
            locate(&buf, &s(&["c"]), &[], ALL, &[]),
            Err(LocateError::NotFound)
        );
        // Longer than the buffer.
        assert_eq!(
            locate(&buf, &s(&["a", "b", "c"]), &[], ALL, &[]),
            Err(LocateError::NotFound)
        );
        assert_eq!(
            locate(&[], &s(&["a"]), &[], ALL, &[]),
            Err(LocateError::NotFound)
        );
    }

    #[test]
    fn empty_search() {
        let buf = s(&["a", ""]);
        assert_eq!(
            locate(&buf, &[], &s(&["x"]), ALL, &[]),
            Err(LocateError::EmptySearch)
        );
        assert_eq!(
            locate(&buf, &s(&["", " \t"]), &s(&["x"]), ALL, &[]),
            Err(LocateError::EmptySearch)
        );
    }

    #[test]
    fn multibyte_indentation_text() {
        let buf = s(&["\u{3000}日本", "\u{3000}語"]);
        // U+3000 is Unicode whitespace: indentation-tolerant, slicing stays on boundaries.
        assert_eq!(
            locate(&buf, &s(&["日本", "語"]), &s(&["新"]), ALL, &[]),
            Ok(found(0, 2, &["\u{3000}新"], MatchKind::Indentation))
        );
    }

    const FN: &[&str] = &[
        "def f(x):",
        "    a = 1",
        "    b = 2",
        "",
        "    return a + b",
        "",
        "def g():",
        "    return 0",
    ];

    #[test]
    fn elision_in_search_and_replace_keeps_the_elided_lines() {
        let buf = s(FN);
        for dots in [
            "    ...",
            "    # ... existing code ...",
            "…",
            "    // ... rest unchanged ...",
        ] {
            let search = s(&["def f(x):", dots, "    return a + b"]);
            let replace = s(&[
                "def f(x):",
                "    \"\"\"Sum.\"\"\"",
                dots,
                "    return a * b",
            ]);
            let got = locate(&buf, &search, &replace, ALL, &[]);
            assert_eq!(
                got.map(|l| (l.start, l.end, l.new_lines)),
                Ok((
                    0,
                    5,
                    s(&[
                        "def f(x):",
                        "    \"\"\"Sum.\"\"\"",
                        "    a = 1",
                        "    b = 2",
                        "",
                        "    return a * b"
                    ])
                )),
                "{dots}"
            );
        }
    }

    #[test]
    fn elision_at_either_end_and_next_to_blank_lines() {
        let buf = s(FN);
        // At the start: from the part after it.
        let search = s(&["# ... existing code ...", "    return a + b"]);
        let replace = s(&["# ... existing code ...", "    return a - b"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]).map(|l| (l.start, l.end, l.new_lines)),
            Ok((4, 5, s(&["    return a - b"])))
        );
        // At the end: up to the part before it.
        let search = s(&["def f(x):", "    # ... rest unchanged ..."]);
        let replace = s(&["def f(x):", "    x += 1", "    # ... rest unchanged ..."]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]).map(|l| (l.start, l.end, l.new_lines)),
            Ok((0, 1, s(&["def f(x):", "    x += 1"])))
        );
        // Blank lines around an elision belong to it.
        let search = s(&["    b = 2", "", "    ...", "", "def g():"]);
        let replace = s(&["    b = 3", "", "    ...", "", "def g():"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]).map(|l| (l.start, l.end, l.new_lines)),
            Ok((
                2,
                7,
                s(&["    b = 3", "", "    return a + b", "", "def g():"])
            ))
        );
    }

    #[test]
    fn elision_with_indentation_change() {
        let buf = s(FN);
        let search = s(&["a = 1", "...", "return a + b"]);
        let replace = s(&["a = 10", "...", "return a + b"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]).map(|l| (l.start, l.end, l.new_lines)),
            Ok((
                1,
                5,
                s(&["    a = 10", "    b = 2", "", "    return a + b"])
            ))
        );
    }

    #[test]
    fn elision_problems_are_named() {
        let buf = s(&["if a then", "  x()", "end", "if a then", "  y()", "end"]);
        let search = s(&["if a then", "  ...", "end"]);
        let replace = s(&["if b then", "  ...", "end"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]),
            Err(LocateError::ElisionAmbiguous(2))
        );
        // The selection settles it, as for any ambiguous match.
        assert_eq!(
            locate(&buf, &search, &replace, (3, 6), &[]).map(|l| (l.start, l.new_lines)),
            Ok((3, s(&["if b then", "  y()", "end"])))
        );
        // Elided in SEARCH, not in REPLACE: where would the lines go?
        assert_eq!(
            locate(&buf, &search, &s(&["x"]), (3, 6), &[]),
            Err(LocateError::ElisionUnpaired {
                search: 1,
                replace: 0
            })
        );
        // The parts around it match nowhere.
        assert_eq!(
            locate(
                &buf,
                &s(&["if c then", "...", "end"]),
                &s(&["...", "x"]),
                ALL,
                &[]
            ),
            Err(LocateError::NotFound)
        );
        // Only elisions: nothing to find.
        assert_eq!(
            locate(&buf, &s(&["..."]), &s(&["x"]), ALL, &[]),
            Err(LocateError::EmptySearch)
        );
    }

    #[test]
    fn elided_replacement_of_a_complete_search_is_refused() {
        let buf = s(FN);
        let search = s(&["def f(x):", "    a = 1", "    b = 2"]);
        let replace = s(&["def f(x):", "    # ... existing code ...", "    c = 3"]);
        assert_eq!(
            locate(&buf, &search, &replace, ALL, &[]),
            Err(LocateError::ElidedReplace("# ... existing code ...".into()))
        );
        // A bare `...` is code in Python (and kept), and literal text in the buffer matches
        // as itself.
        let buf = s(&["class A:", "    ...", "x = 1"]);
        assert_eq!(
            locate(&buf, &s(&["x = 1"]), &s(&["..."]), ALL, &[]).map(|l| l.new_lines),
            Ok(s(&["..."]))
        );
        assert_eq!(
            locate(
                &buf,
                &s(&["class A:", "    ..."]),
                &s(&["class A:", "    y = 2"]),
                ALL,
                &[]
            ),
            Ok(found(0, 2, &["class A:", "    y = 2"], MatchKind::Exact))
        );
    }

    #[test]
    fn elision_lines() {
        for yes in [
            "...",
            "  …",
            "# ...",
            "    # ... existing code ...",
            "// ... rest of the function unchanged ...",
            "-- ...",
            "/* ... */",
            "<!-- ... -->",
            "... existing code ...",
            "// ...existing code",
            ";; ...",
            "## ... helpers ...",
        ] {
            assert!(elision(yes).is_some(), "{yes}");
        }
        for no in [
            "x = ...",
            "# wait for it...",
            "print('...')",
            "existing code...",
            "... = x",
            "",
            "// ... { x = 1 } ...",
        ] {
            assert_eq!(elision(no), None, "{no}");
        }
        assert_eq!(elision("  ..."), Some(Elision::Bare));
        assert_eq!(elision("# ..."), Some(Elision::Worded));
    }

    /// (index, start, end, new, replaces) of a placed hunk.
    type Got = (usize, usize, usize, Vec<String>, Vec<usize>);

    fn place(
        plan: &mut Plan,
        lines: &[String],
        search: &[&str],
        replace: &[&str],
    ) -> Result<Got, LocateError> {
        let title = search.first().copied().unwrap_or("").to_string();
        plan.place(lines, &s(search), &s(replace), ALL, &title)
            .map(|p| {
                (
                    p.hunk.index,
                    p.hunk.start,
                    p.hunk.end,
                    p.hunk.new,
                    p.replaces,
                )
            })
    }

    #[test]
    fn a_block_editing_an_earlier_blocks_text_merges_into_its_hunk() {
        let lines = s(&["a", "b", "c", "d"]);
        let mut plan = Plan::default();
        assert_eq!(
            place(&mut plan, &lines, &["b"], &["b", "b2"]),
            Ok((1, 1, 2, s(&["b", "b2"]), vec![]))
        );
        // Only in the first block's text.
        assert_eq!(
            place(&mut plan, &lines, &["b2"], &["B2"]),
            Ok((2, 1, 2, s(&["b", "B2"]), vec![1]))
        );
        // Across a hunk's text and original lines on both sides.
        assert_eq!(
            place(&mut plan, &lines, &["a", "b", "B2", "c"], &["abc"]),
            Ok((3, 0, 3, s(&["abc"]), vec![2]))
        );
        assert_eq!(plan.hunks().len(), 1);
        assert_eq!(plan.apply(&lines), s(&["abc", "d"]));
    }

    #[test]
    fn a_block_spanning_a_deletion_and_two_hunks_merges_them() {
        let lines = s(&["a", "b", "c", "d", "e"]);
        let mut plan = Plan::default();
        place(&mut plan, &lines, &["b"], &[]).unwrap();
        place(&mut plan, &lines, &["d"], &["D"]).unwrap();
        assert_eq!(
            place(&mut plan, &lines, &["a", "c", "D"], &["x"]),
            Ok((3, 0, 4, s(&["x"]), vec![1, 2]))
        );
        assert_eq!(plan.apply(&lines), s(&["x", "e"]));
        // A deletion right before a match is not part of it.
        let mut plan = Plan::default();
        place(&mut plan, &lines, &["b", "c"], &["B"]).unwrap();
        place(&mut plan, &lines, &["d"], &[]).unwrap();
        assert_eq!(
            place(&mut plan, &lines, &["e"], &["E"]),
            Ok((3, 4, 5, s(&["E"]), vec![]))
        );
        assert_eq!(
            place(&mut plan, &lines, &["B"], &["BB"]),
            Ok((4, 1, 3, s(&["BB"]), vec![1]))
        );
        assert_eq!(plan.apply(&lines), s(&["a", "BB", "E"]));
    }

    #[test]
    fn identical_searches_still_take_successive_occurrences_first() {
        let lines = s(&["x", "y", "x"]);
        let mut plan = Plan::default();
        assert_eq!(
            place(&mut plan, &lines, &["x"], &["x", "z"]).map(|p| p.1),
            Ok(0)
        );
        assert_eq!(
            place(&mut plan, &lines, &["x"], &["x", "w"]).map(|p| (p.1, p.4)),
            Ok((2, vec![]))
        );
        // No third occurrence in the original: the first block's text is next.
        assert_eq!(
            place(&mut plan, &lines, &["x"], &["q"]),
            Ok((3, 0, 1, s(&["q", "z"]), vec![1]))
        );
    }

    #[test]
    fn overlapping_and_repeated_blocks_are_named() {
        let lines = s(&["a", "b", "c", "d"]);
        let mut plan = Plan::default();
        place(&mut plan, &lines, &["a", "b", "c"], &["A"]).unwrap();
        // Written against the original text, overlapping the first block's lines.
        assert_eq!(
            place(&mut plan, &lines, &["c", "d"], &["C"]),
            Err(LocateError::Overlaps("a".into()))
        );
        // The same block twice would apply it twice.
        let mut plan = Plan::default();
        place(&mut plan, &lines, &["b"], &["b", "b2"]).unwrap();
        assert_eq!(
            place(&mut plan, &lines, &["b"], &["b", "b2"]),
            Err(LocateError::Repeats("b".into()))
        );
        assert_eq!(plan.apply(&lines), s(&["a", "b", "b2", "c", "d"]));
    }

    #[test]
    fn large_buffer() {
        let buf: Vec<String> = (0..20_000)
            .map(|i| {
                format!(
                    "{}let v{} = f({});",
                    " ".repeat(4 * (i % 3)),
                    i % 500,
                    i % 7
                )
            })
            .collect();
        // Its time, at 1× and 10×, is in `cargo bench --bench edit_parse`.
        let exact: Vec<String> = buf[17_000..17_010].to_vec();
        let hit = locate(&buf, &exact, &s(&["x"]), (0, 10), &[]);
        // Same text recurs every lcm(3, 500, 7) = 10,500 lines.
        assert_eq!(hit.map(|l| (l.start, l.how)), Ok((6_500, MatchKind::Exact)));
        let hit = locate(&buf, &exact, &s(&["x"]), (16_000, 18_000), &[]);
        assert_eq!(hit.map(|l| l.start), Ok(17_000));

        // Indentation-tolerant and not-found paths scan everything (three
        // strategies, twice with the padded retry).
        let shifted: Vec<String> = exact.iter().map(|l| format!("  {l}")).collect();
        let hit = locate(&buf, &shifted, &s(&["  x"]), (17_000, 17_010), &[]);
        assert_eq!(
            hit.map(|l| (l.start, l.how, l.new_lines)),
            Ok((17_000, MatchKind::Indentation, s(&["x"])))
        );
        let mut padded = vec![String::new()];
        padded.extend(exact.iter().cloned());
        padded[5] = "nope".into();
        assert_eq!(
            locate(&buf, &padded, &[], ALL, &[]),
            Err(LocateError::NotFound)
        );

        // Worst case for lazy comparison: every line equal until the last.
        let same: Vec<String> = vec!["    x".to_string(); 20_000];
        let mut search = vec!["x".to_string(); 9];
        search.push("y".into());
        assert_eq!(
            locate(&same, &search, &[], ALL, &[]),
            Err(LocateError::NotFound)
        );
    }

    /// A SEARCH of 10,001 lines whose 10,000 `}` match everywhere in a file of 20,000 `}` and
    /// whose last line matches nothing (issue 15): every start used to be compared line by line
    /// (about 10⁸ comparisons a strategy, seconds in a release build). It is found nowhere at
    /// once: the time bound is generous for a debug build on a loaded machine.
    #[test]
    fn a_hostile_search_is_found_nowhere_at_once() {
        let braces = vec!["}".to_string(); 20_000];
        let mut hostile = vec!["}".to_string(); 10_000];
        hostile.push("nowhere".into());
        let t = std::time::Instant::now();
        assert_eq!(
            locate(&braces, &hostile, &s(&["x"]), ALL, &[]),
            Err(LocateError::NotFound)
        );
        // Every start matching: the nearest to the selection, without comparing them all.
        assert_eq!(
            locate(
                &braces,
                &braces[..10_000],
                &s(&["x"]),
                (15_000, 16_000),
                &[]
            )
            .map(|l| l.start),
            Ok(10_000)
        );
        let mut plan = Plan::default();
        assert_eq!(
            plan.place(&braces, &hostile, &s(&["x"]), ALL, "}")
                .map(|p| p.hunk.start),
            Err(LocateError::NotFound)
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }

    /// Indentation that steps every 1,000 lines under a re-indented SEARCH of 1,000 `}`: the
    /// text matches at every start, the indentation fails half way on average. Proving that
    /// nowhere fits would cost about 2.5·10⁷ comparisons: the block is refused as too costly,
    /// by a count of comparisons (not by the clock), with a reason.
    #[test]
    fn a_block_too_costly_to_place_is_refused_with_a_reason() {
        let stepped: Vec<String> = (0..50_000)
            .map(|i| if i % 1_000 == 999 { "  }" } else { "}" }.to_string())
            .collect();
        let flat = vec!["    }".to_string(); 1_000];
        assert_eq!(
            locate(&stepped, &flat, &s(&["x"]), ALL, &[]),
            Err(LocateError::TooCostly)
        );
        let why = LocateError::TooCostly.to_string();
        assert!(why.contains("too long"), "{why}");
        // Under the bound, the same is searched through: 1,001 starts of about 500 comparisons.
        let (small, search) = (&stepped[..200], &flat[..100]);
        let stepped_small: Vec<String> = (0..2_000)
            .map(|i| if i % 100 == 99 { "  }" } else { "}" }.to_string())
            .collect();
        assert_eq!(
            locate_within(&stepped_small, search, &[], ALL, &[], 100_000),
            Err(LocateError::NotFound)
        );
        assert_eq!(
            locate_within(&stepped_small, search, &[], ALL, &[], 50_000),
            Err(LocateError::TooCostly)
        );
        // Where a place fits, the nearest is tried first: little work.
        assert_eq!(
            locate_within(small, &small[..99], &[], (100, 200), &[], 200).map(|l| l.start),
            Ok(100)
        );
        // An elided SEARCH whose parts recur everywhere is bounded too.
        let mut elided = vec!["    }".to_string(), "...".into()];
        elided.extend(search.iter().cloned());
        assert_eq!(
            locate_within(&stepped_small, &elided, &s(&["..."]), ALL, &[], 50_000),
            Err(LocateError::TooCostly)
        );
    }

    /// The bound never refuses an honest block: 1,000 lines in a 50,000-line file, as they
    /// are, re-indented, elided, and re-indented where every start's text matches.
    #[test]
    fn an_honest_1000_line_search_in_50000_lines_places() {
        let code: Vec<String> = (0..50_000)
            .map(|i| format!("{}let v{i} = f({});", " ".repeat(4 * (i % 3)), i % 7))
            .collect();
        let honest = code[30_000..31_000].to_vec();
        let hit = locate(&code, &honest, &s(&["x"]), (0, 10), &[]);
        assert_eq!(
            hit.map(|l| (l.start, l.end, l.how)),
            Ok((30_000, 31_000, MatchKind::Exact))
        );
        let shifted: Vec<String> = honest.iter().map(|l| format!("  {l}")).collect();
        let hit = locate(&code, &shifted, &s(&["  x"]), (0, 10), &[]);
        assert_eq!(
            hit.map(|l| (l.start, l.how, l.new_lines)),
            Ok((30_000, MatchKind::Indentation, s(&["x"])))
        );
        let mut elided = honest[..500].to_vec();
        elided.push("...".into());
        elided.extend(honest[900..].iter().cloned());
        let hit = locate(&code, &elided, &s(&["a", "...", "b"]), (0, 10), &[]);
        assert_eq!(
            hit.map(|l| (l.start, l.end, l.new_lines.len())),
            Ok((30_000, 31_000, 402))
        );
        // Text that recurs everywhere, re-indented: the nearest start fits at once.
        let deep = vec!["  }".to_string(); 50_000];
        let flat = vec!["}".to_string(); 1_000];
        let hit = locate(&deep, &flat, &s(&["x"]), (40_000, 41_000), &[]);
        assert_eq!(
            hit.map(|l| (l.start, l.how)),
            Ok((40_000, MatchKind::Indentation))
        );
    }

    /// Property tests: `PROPTEST_CASES` sets how many cases (128 by default; the long run
    /// before a release uses far more).
    mod props {
        use super::*;
        use proptest::prelude::*;

        use crate::edit::props_config as config;

        /// Few distinct texts, so that matches (and near-matches) are frequent.
        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => (0usize..3, prop::sample::select(vec!["a", "b", "c", "x = 1", "}", "日本"]), 0usize..2)
                    .prop_map(|(i, t, trail)| format!("{}{t}{}", "  ".repeat(i), " ".repeat(trail))),
                1 => prop::sample::select(vec!["", "   ", "\t", "...", "# ... existing code ...", "\tb"])
                    .prop_map(str::to_string),
            ]
        }

        fn lines(max: usize) -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(line(), 0..max)
        }

        /// Whether `window` is what SEARCH (or its core without blank ends) finds with `how`.
        fn matches_as(window: &[String], search: &[String], how: MatchKind) -> bool {
            let lead = search.iter().take_while(|l| is_blank(l)).count();
            let trail = search[lead..]
                .iter()
                .rev()
                .take_while(|l| is_blank(l))
                .count();
            let core = &search[lead..search.len() - trail];
            [search, core].iter().any(|s| {
                s.len() == window.len()
                    && window.iter().zip(s.iter()).all(|(b, s)| match how {
                        MatchKind::Exact => b == s,
                        MatchKind::TrailingWhitespace => b.trim_end() == s.trim_end(),
                        MatchKind::Indentation => b.trim() == s.trim(),
                    })
            })
        }

        /// The plan's hunks are sorted, disjoint, inside the lines, and numbered uniquely.
        fn check_plan(plan: &Plan, n: usize) -> Result<(), TestCaseError> {
            let hunks = plan.hunks();
            for w in hunks.windows(2) {
                prop_assert!(w[0].end <= w[1].start, "overlapping hunks {:?}", hunks);
            }
            for h in hunks {
                prop_assert!(h.start < h.end && h.end <= n, "{:?}", h);
            }
            let mut idx: Vec<usize> = hunks.iter().map(|h| h.index).collect();
            idx.sort_unstable();
            idx.dedup();
            prop_assert_eq!(idx.len(), hunks.len());
            Ok(())
        }

        /// Unique lines: every SEARCH taken from the text matches there only.
        fn unique(n: usize) -> Vec<String> {
            (0..n).map(|i| format!("line {i}")).collect()
        }

        proptest! {
            #![proptest_config(config())]

            /// Any input: no panic, and a match is inside the buffer, off the claimed
            /// ranges, and (without elisions) really the SEARCH under its strategy.
            #[test]
            fn locate_is_consistent(
                buf in lines(30),
                search in lines(6),
                replace in lines(4),
                prefer in (0usize..40, 0usize..40),
                taken in prop::collection::vec((0usize..32, 0usize..6), 0..3),
            ) {
                let taken: Vec<(usize, usize)> = taken.iter().map(|&(s, l)| (s, s + l)).collect();
                match locate(&buf, &search, &replace, prefer, &taken) {
                    Ok(found) => {
                        prop_assert!(found.start < found.end && found.end <= buf.len());
                        prop_assert!(!overlaps_taken(found.start, found.end, &taken));
                        if search.iter().all(|l| elision(l).is_none()) {
                            prop_assert!(
                                matches_as(&buf[found.start..found.end], &search, found.how),
                                "{:?} is not {:?}", &buf[found.start..found.end], found
                            );
                        }
                    }
                    Err(LocateError::EmptySearch) => {
                        prop_assert!(search.iter().all(|l| is_blank(l) || elision(l).is_some()));
                    }
                    Err(_) => {}
                }
            }

            /// The linear search finds exactly the starts where every line compares equal, and
            /// the merged claimed ranges answer as the plain definition does.
            #[test]
            fn occurrences_and_taken_agree_with_their_definitions(
                buf in lines(30),
                search in prop::collection::vec(line(), 1..5),
                taken in prop::collection::vec((0usize..32, 0usize..6), 0..4),
                at in (0usize..34, 1usize..6),
            ) {
                for how in [MatchKind::Exact, MatchKind::TrailingWhitespace, MatchKind::Indentation] {
                    let m = search.len();
                    let naive: Vec<usize> = (0..buf.len())
                        .filter(|&i| {
                            i + m <= buf.len()
                                && buf[i..i + m].iter().zip(&search).all(|(b, s)| same_text(how, b, s))
                        })
                        .collect();
                    prop_assert_eq!(occurrences(&buf, &search, how), naive, "{:?}", how);
                }
                let taken: Vec<(usize, usize)> = taken.iter().map(|&(s, l)| (s, s + l)).collect();
                let (start, len) = at;
                prop_assert_eq!(
                    Taken::new(&taken).overlaps(start, start + len),
                    overlaps_taken(start, start + len, &taken)
                );
            }

            /// Any sequence of blocks: no panic, and the hunks stay disjoint, each over the
            /// original lines, so each can be accepted on its own.
            #[test]
            fn plan_keeps_hunks_disjoint(
                buf in lines(30),
                blocks in prop::collection::vec((lines(5), lines(4)), 0..8),
            ) {
                let mut plan = Plan::default();
                let mut live: Vec<usize> = Vec::new();
                for (i, (search, replace)) in blocks.iter().enumerate() {
                    if let Ok(p) = plan.place(&buf, search, replace, (0, buf.len()), &format!("b{i}")) {
                        for r in &p.replaces {
                            prop_assert!(live.contains(r), "replaces {} of {:?}", r, live);
                        }
                        live.retain(|i| !p.replaces.contains(i));
                        live.push(p.hunk.index);
                    }
                    check_plan(&plan, buf.len())?;
                    let mut shown: Vec<usize> = plan.hunks().iter().map(|h| h.index).collect();
                    shown.sort_unstable();
                    let mut want = live.clone();
                    want.sort_unstable();
                    prop_assert_eq!(shown, want);
                }
                let _ = plan.apply(&buf);
            }

            /// Blocks whose SEARCH is taken from the text as the blocks before left it (the
            /// model editing its own edits): the hunks give exactly that text.
            #[test]
            fn plan_equals_applying_blocks_in_turn(
                n in 1usize..25,
                steps in prop::collection::vec((any::<prop::sample::Index>(), 1usize..4, 0usize..3), 1..8),
            ) {
                let buf = unique(n);
                let mut text = buf.clone();
                let mut plan = Plan::default();
                for (k, (at, len, grow)) in steps.iter().enumerate() {
                    if text.is_empty() {
                        break;
                    }
                    let start = at.index(text.len());
                    let end = (start + len).min(text.len());
                    let search = text[start..end].to_vec();
                    let replace: Vec<String> = (0..grow + (end - start) % 2)
                        .map(|j| format!("new {k}.{j}"))
                        .collect();
                    let placed = plan.place(&buf, &search, &replace, (0, n), "t");
                    prop_assert!(placed.is_ok(), "{:?} for {:?}", placed, search);
                    text.splice(start..end, replace);
                    check_plan(&plan, n)?;
                    prop_assert_eq!(&plan.apply(&buf), &text);
                }
            }

            /// SEARCH with its middle lines elided, REPLACE eliding the same: the elided
            /// lines are kept and the rest replaced.
            #[test]
            fn elided_lines_are_kept(
                pre in 0usize..5,
                post in 0usize..5,
                mut shape in prop::collection::vec(1usize..4, 3..6),
                dots in prop::sample::select(vec!["...", "    # ... existing code ...", "// ... rest unchanged ..."]),
            ) {
                // Parts and gaps alternating, part first and last, each at least one line.
                if shape.len() % 2 == 0 {
                    shape.pop();
                }
                let n = pre + shape.iter().sum::<usize>() + post;
                let buf = unique(n);
                let (start, end) = (pre, n - post);
                let mut ranges = Vec::new();
                let mut at = start;
                for len in &shape {
                    ranges.push((at, at + len));
                    at += len;
                }
                let mut search = Vec::new();
                let mut replace = Vec::new();
                let mut expected = Vec::new();
                for (i, &(a, b)) in ranges.iter().enumerate() {
                    if i % 2 == 1 {
                        search.push(dots.to_string());
                        replace.push(dots.to_string());
                        expected.extend_from_slice(&buf[a..b]);
                    } else {
                        search.extend_from_slice(&buf[a..b]);
                        let new: Vec<String> = buf[a..b].iter().map(|l| format!("{l}!")).collect();
                        replace.extend(new.iter().cloned());
                        expected.extend(new);
                    }
                }
                let found = locate(&buf, &search, &replace, (0, n), &[]);
                prop_assert_eq!(found.map(|f| (f.start, f.end, f.new_lines)), Ok((start, end, expected)));
            }
        }
    }
}
