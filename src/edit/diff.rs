//! What a hunk changes, line by line and word by word: the diff between the buffer lines a
//! block matched (`old`) and the lines accepting it would write (`new`) — not the SEARCH text,
//! which matching lets differ in indentation. The shim marks only these lines (SPEC, "Only
//! what changes is marked"); accept and reject still take the whole block.
//!
//! Lines are diffed with `similar`'s Myers; inside a changed line paired with a new one (the
//! i-th old line of a replaced run with its i-th new line), tokens — runs of word characters,
//! runs of white space, any other character alone — are diffed again, and the tokens that
//! differ on each side are sent as byte ranges. A pair of lines with less than half their
//! bytes in common gets no word ranges: the whole line is the change.

use similar::{capture_diff_slices_deadline, Algorithm, DiffTag};
use std::time::{Duration, Instant};

/// How long one hunk's line diff may take before `similar` settles for a coarser one (still
/// exact: every changed line is in a change, only the pairing is less tight). A hostile answer
/// of thousands of lines must not hold the blocking pool.
const LINES_DEADLINE: Duration = Duration::from_millis(50);

/// The same for the words of one pair of lines.
const WORDS_DEADLINE: Duration = Duration::from_millis(5);

pub use crate::protocol::Change;

/// The changes from `old` to `new`, in order; none when they are equal.
pub fn changes(old: &[String], new: &[String]) -> Vec<Change> {
    let deadline = Some(Instant::now() + LINES_DEADLINE);
    let ops = capture_diff_slices_deadline(Algorithm::Myers, old, new, deadline);
    let mut out: Vec<Change> = Vec::new();
    for op in ops {
        let (tag, o, n) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            continue;
        }
        // Adjacent delete + insert runs are one change (Myers reports them apart).
        let change = match out.last_mut() {
            Some(last) if last.old.1 == o.start && last.new.1 == n.start => last,
            _ => {
                out.push(Change {
                    old: (o.start, o.start),
                    new: (n.start, n.start),
                    old_words: Vec::new(),
                    new_words: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        change.old.1 = o.end;
        change.new.1 = n.end;
    }
    for c in &mut out {
        let pairs = (c.old.1 - c.old.0).min(c.new.1 - c.new.0);
        for i in 0..pairs {
            let (a, b) = (c.old.0 + i, c.new.0 + i);
            if let Some((ow, nw)) = words(&old[a], &new[b]) {
                c.old_words.extend(ow.into_iter().map(|(s, e)| (a, s, e)));
                c.new_words.extend(nw.into_iter().map(|(s, e)| (b, s, e)));
            }
        }
    }
    out
}

/// Byte ranges of the tokens that differ between two lines, on each side (adjacent ranges
/// merged); None when the lines have too little in common to mark words.
type Ranges = Vec<(usize, usize)>;
fn words(old: &str, new: &str) -> Option<(Ranges, Ranges)> {
    let (a, b) = (tokens(old), tokens(new));
    let text = |t: &[(usize, usize)], s: &str| -> Vec<String> {
        t.iter().map(|&(x, y)| s[x..y].to_string()).collect()
    };
    let (ta, tb) = (text(&a, old), text(&b, new));
    let deadline = Some(Instant::now() + WORDS_DEADLINE);
    let ops = capture_diff_slices_deadline(Algorithm::Myers, &ta, &tb, deadline);
    let (mut ro, mut rn) = (Vec::new(), Vec::new());
    let mut common = 0;
    for op in ops {
        let (tag, o, n) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            common += o.map(|i| a[i].1 - a[i].0).sum::<usize>();
            continue;
        }
        push(&mut ro, &a, o);
        push(&mut rn, &b, n);
    }
    if common * 2 < old.len().max(new.len()) {
        return None;
    }
    Some((ro, rn))
}

/// Appends the byte range of tokens `r`, merged with the last range when they touch.
fn push(out: &mut Vec<(usize, usize)>, toks: &[(usize, usize)], r: std::ops::Range<usize>) {
    if r.is_empty() {
        return;
    }
    let (s, e) = (toks[r.start].0, toks[r.end - 1].1);
    match out.last_mut() {
        Some(last) if last.1 == s => last.1 = e,
        _ => out.push((s, e)),
    }
}

/// A line's tokens as byte ranges: runs of word characters, runs of white space, and each
/// other character alone.
fn tokens(s: &str) -> Vec<(usize, usize)> {
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        Word,
        Space,
        Other,
    }
    let kind = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            Kind::Word
        } else if c.is_whitespace() {
            Kind::Space
        } else {
            Kind::Other
        }
    };
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut prev: Option<Kind> = None;
    for (i, c) in s.char_indices() {
        let k = kind(c);
        match out.last_mut() {
            Some(last) if prev == Some(k) && k != Kind::Other => last.1 = i + c.len_utf8(),
            _ => out.push((i, i + c.len_utf8())),
        }
        prev = Some(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    fn seven() -> Vec<String> {
        lines(&[
            "def report(items):",
            "    total = 0",
            "    for item in items:",
            "        total += item.price",
            "    print(total)",
            "    return total",
            "",
        ])
    }

    #[test]
    fn one_changed_line_in_seven_marks_that_line_and_its_changed_word() {
        let old = seven();
        let mut new = old.clone();
        new[4] = "    print(total * 2)".into();
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].old, c[0].new), ((4, 5), (4, 5)));
        assert!(c[0].old_words.is_empty(), "nothing removed inside: {c:?}");
        // " * 2" was added after `total`.
        assert_eq!(c[0].new_words, vec![(4, 15, 19)]);
        assert_eq!(&new[4][15..19], " * 2");
    }

    #[test]
    fn a_changed_word_is_marked_on_both_sides() {
        let old = lines(&["x = compute(a, b)"]);
        let new = lines(&["x = compute(a, c)"]);
        let c = changes(&old, &new);
        assert_eq!(c[0].old_words, vec![(0, 15, 16)]);
        assert_eq!(c[0].new_words, vec![(0, 15, 16)]);
    }

    #[test]
    fn a_pure_insertion_marks_no_old_line() {
        let old = seven();
        let mut new = old.clone();
        new.insert(1, "    \"\"\"Sum the prices.\"\"\"".into());
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].old, c[0].new), ((1, 1), (1, 2)));
        assert!(c[0].old_words.is_empty() && c[0].new_words.is_empty());
    }

    #[test]
    fn a_deletion_marks_only_the_deleted_lines() {
        let old = seven();
        let mut new = old.clone();
        new.remove(4);
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].old, c[0].new), ((4, 5), (4, 4)));
    }

    #[test]
    fn blank_added_lines_are_changes_too() {
        let old = lines(&["a", "b"]);
        let new = lines(&["a", "", "", "b"]);
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].old, c[0].new), ((1, 1), (1, 3)));
    }

    #[test]
    fn an_indentation_change_marks_the_leading_space_only() {
        let old = lines(&["if x:", "  y = 1"]);
        let new = lines(&["if x:", "    y = 1"]);
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!((c[0].old, c[0].new), ((1, 2), (1, 2)));
        assert_eq!(c[0].old_words, vec![(1, 0, 2)]);
        assert_eq!(c[0].new_words, vec![(1, 0, 4)]);
    }

    #[test]
    fn lines_with_little_in_common_get_no_word_ranges() {
        let old = lines(&["return compute_everything(now)"]);
        let new = lines(&["raise ValueError('nope')"]);
        let c = changes(&old, &new);
        assert_eq!((c[0].old, c[0].new), ((0, 1), (0, 1)));
        assert!(
            c[0].old_words.is_empty() && c[0].new_words.is_empty(),
            "{c:?}"
        );
    }

    #[test]
    fn equal_lines_and_a_new_file_and_multibyte_words() {
        assert!(changes(&seven(), &seven()).is_empty());
        let c = changes(&[], &lines(&["one", "two"]));
        assert_eq!((c[0].old, c[0].new), ((0, 0), (0, 2)));
        // Byte ranges fall on character boundaries.
        let c = changes(&lines(&["s = \"café\""]), &lines(&["s = \"thé\""]));
        let (_, s, e) = c[0].new_words[0];
        assert_eq!(&"s = \"thé\""[s..e], "thé");
    }

    #[test]
    fn lines_are_compared_as_sent_no_carriage_return_is_stripped() {
        // The shim sends lines without their end of line; a "\r" left in one is a real change.
        let c = changes(&lines(&["a", "b"]), &lines(&["a", "b\r"]));
        assert_eq!((c[0].old, c[0].new), ((1, 2), (1, 2)));
        assert_eq!(c[0].new_words, vec![(1, 1, 2)]);
    }

    /// A huge hunk of lines that have nothing in common is diffed within the deadline into
    /// changes that still cover every line (a hostile answer holds no thread for long).
    #[test]
    fn a_huge_hunk_is_diffed_within_the_deadline_and_covers_every_line() {
        let old: Vec<String> = (0..20_000)
            .map(|i| format!("old line {i} {}", i * 7))
            .collect();
        let new: Vec<String> = (0..20_000).map(|i| format!("new row {}", i * 13)).collect();
        let started = Instant::now();
        let c = changes(&old, &new);
        // Generous: the bound is the deadline plus one pass, not the quadratic search.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let covered_old: usize = c.iter().map(|c| c.old.1 - c.old.0).sum();
        let covered_new: usize = c.iter().map(|c| c.new.1 - c.new.0).sum();
        assert_eq!((covered_old, covered_new), (20_000, 20_000));
    }
}
