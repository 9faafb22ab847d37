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

/// Why a block could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocateError {
    /// SEARCH has no non-blank line, so it would match anywhere.
    EmptySearch,
    /// No (unclaimed) place in `lines` matches SEARCH.
    NotFound,
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
/// Each candidate position is compared lazily, first line first, without
/// allocating, so a large buffer costs about one string comparison per line.
pub fn locate(
    lines: &[String],
    search: &[String],
    replace: &[String],
    prefer: (usize, usize),
    taken: &[(usize, usize)],
) -> Result<Located, LocateError> {
    if search.iter().all(|l| is_blank(l)) {
        return Err(LocateError::EmptySearch);
    }
    if let Some(found) = locate_with(lines, search, replace, prefer, taken) {
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
    locate_with(lines, core, core_replace, prefer, taken).ok_or(LocateError::NotFound)
}

/// Strategies (1)-(3) for one SEARCH text.
fn locate_with(
    lines: &[String],
    search: &[String],
    replace: &[String],
    prefer: (usize, usize),
    taken: &[(usize, usize)],
) -> Option<Located> {
    let m = search.len();
    let last_start = lines.len().checked_sub(m)?;
    for how in [
        MatchKind::Exact,
        MatchKind::TrailingWhitespace,
        MatchKind::Indentation,
    ] {
        let starts = (0..=last_start).filter(|&i| {
            let window = &lines[i..i + m];
            let hit = match how {
                MatchKind::Exact => window.iter().zip(search).all(|(b, s)| b == s),
                MatchKind::TrailingWhitespace => window
                    .iter()
                    .zip(search)
                    .all(|(b, s)| b.trim_end() == s.trim_end()),
                MatchKind::Indentation => indentation_match(window, search).is_some(),
            };
            hit && !overlaps_taken(i, i + m, taken)
        });
        let Some(start) = best(starts, m, prefer) else {
            continue;
        };
        let new_lines = match how {
            MatchKind::Indentation => match indentation_match(&lines[start..start + m], search) {
                Some(shift) => replace.iter().map(|l| shift.apply(l)).collect(),
                // Unreachable: `start` matched just above.
                None => continue,
            },
            MatchKind::Exact | MatchKind::TrailingWhitespace => replace.to_vec(),
        };
        return Some(Located {
            start,
            end: start + m,
            new_lines,
            how,
        });
    }
    None
}

/// Among the matching starts, the one fully inside `prefer`, otherwise the one
/// starting closest to `prefer.0`; ties go to the earlier one. Inside `prefer`
/// the closest is also the earliest.
fn best(starts: impl Iterator<Item = usize>, m: usize, prefer: (usize, usize)) -> Option<usize> {
    let (p0, p1) = prefer;
    starts.min_by_key(|&i| {
        let inside = i >= p0 && i + m <= p1;
        (!inside, i.abs_diff(p0), i)
    })
}

/// Whether [start, end) overlaps any claimed range; empty ranges claim nothing.
fn overlaps_taken(start: usize, end: usize, taken: &[(usize, usize)]) -> bool {
    taken.iter().any(|&(a, b)| a < b && a < end && start < b)
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
fn indentation_match<'a>(window: &'a [String], search: &'a [String]) -> Option<Shift<'a>> {
    let mut shift: Option<Shift<'a>> = None;
    for (b, s) in window.iter().zip(search) {
        let (b_text, s_text) = (b.trim(), s.trim());
        if b_text != s_text {
            return None;
        }
        if s_text.is_empty() {
            continue;
        }
        let (b_indent, s_indent) = (indent(b), indent(s));
        match shift {
            None => shift = Some(Shift::between(s_indent, b_indent)),
            Some(sh) => {
                if !sh.maps(s_indent, b_indent) {
                    return None;
                }
            }
        }
    }
    shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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

    #[test]
    fn ambiguous_inside_selection() {
        let buf = s(&["x", "a", "x", "b", "x"]);
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (2, 4), &[]).map(|l| l.start),
            Ok(2)
        );
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (3, 5), &[]).map(|l| l.start),
            Ok(4)
        );
        // A match only partly inside the selection doesn't count as inside.
        let buf = s(&["x", "y", "q", "x", "y"]);
        assert_eq!(
            locate(&buf, &s(&["x", "y"]), &[], (1, 5), &[]).map(|l| l.start),
            Ok(3)
        );
    }

    #[test]
    fn ambiguous_outside_selection() {
        let buf = s(&["x", "a", "b", "c", "x", "d", "e", "x"]);
        // Nearest start to the selection's start.
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (5, 7), &[]).map(|l| l.start),
            Ok(4)
        );
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (1, 2), &[]).map(|l| l.start),
            Ok(0)
        );
        // Tie (distance 2 either way): the earlier one.
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (2, 3), &[]).map(|l| l.start),
            Ok(0)
        );
        // Out-of-range or reversed selections don't panic.
        assert_eq!(
            locate(&buf, &s(&["x"]), &[], (100, 3), &[]).map(|l| l.start),
            Ok(7)
        );
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
        let exact: Vec<String> = buf[17_000..17_010].to_vec();
        let started = Instant::now();
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
        // Generous bound for a debug build; quadratic allocation would blow it.
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
