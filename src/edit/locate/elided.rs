//! SEARCH sections with elisions (`// ... existing code ...`): the parts between them found in
//! order, and a REPLACE that elides what SEARCH does not show refused.

use super::{is_blank, occurrences, LocateError, Located, MatchKind, Place, Shift};

/// What an elision line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elision {
    /// `...` or `…` alone: also code (Python's `Ellipsis`, a stub body), so never refused
    /// in REPLACE.
    Bare,
    /// A comment that starts with `...`, e.g. `# ... existing code ...`, `// ...`, or
    /// `... rest unchanged ...` between dots.
    Worded,
}

/// Whether `line` stands for elided text, and how it says so.
pub fn elision(line: &str) -> Option<Elision> {
    const OPEN: &[&str] = &["<!--", "{/*", "/*", "(*", "//", "#", "--", ";", "%", "*"];
    const CLOSE: &[&str] = &["-->", "*/}", "*/", "*)"];
    let text = line.trim();
    let opened = OPEN
        .iter()
        .find_map(|o| text.strip_prefix(o).map(|rest| (o, rest)));
    let (comment, inner) = match opened {
        Some((open, rest)) => {
            // `;; ...`, `## ...`: the leader doubled.
            let rest = rest.trim_start_matches(|c| open.contains(c)).trim();
            let rest = CLOSE
                .iter()
                .find_map(|c| rest.strip_suffix(c))
                .unwrap_or(rest);
            (true, rest.trim())
        }
        None => (false, text),
    };
    let is_dots =
        |t: &str| t.chars().all(|c| c == '.' || c == '…') && (t.contains('…') || t.len() >= 3);
    if inner.is_empty() || !inner.starts_with(['.', '…']) {
        return None;
    }
    if is_dots(inner) {
        return Some(if comment {
            Elision::Worded
        } else {
            Elision::Bare
        });
    }
    let lead = inner.len() - inner.trim_start_matches(['.', '…']).len();
    if !is_dots(&inner[..lead]) {
        return None;
    }
    let words = inner.trim_matches(['.', '…']).trim();
    let ends_in_dots = inner.trim_end_matches(['.', '…']).len() < inner.len();
    let wordy = !words.is_empty()
        && words.chars().count() <= 80
        && words.chars().any(char::is_alphabetic)
        && !words.contains(['=', ';', '{', '}', '"', '`', '<', '>', '[', ']']);
    (wordy && (comment || ends_in_dots)).then_some(Elision::Worded)
}

/// A REPLACE that elides with a comment (not a bare `...`, which is code too) where SEARCH
/// shows every line and has no such line itself.
pub(super) fn refuse_elided_replace(
    search: &[String],
    replace: &[String],
) -> Result<(), LocateError> {
    let search: std::collections::HashSet<&str> = search.iter().map(|s| s.trim()).collect();
    let shown = |l: &str| search.contains(l.trim());
    match replace
        .iter()
        .find(|l| elision(l) == Some(Elision::Worded) && !shown(l))
    {
        Some(line) => Err(LocateError::ElidedReplace(line.trim().to_string())),
        None => Ok(()),
    }
}

/// One part of an elided text: `lines[start..end]`, the part between two elisions, of which
/// `lead` and `trail` blank lines next to an elision are left to it.
#[derive(Debug, Clone, Copy)]
struct Part {
    start: usize,
    end: usize,
    lead: usize,
    trail: usize,
}

impl Part {
    /// The part without the blank lines next to its elisions.
    fn core<'a>(&self, lines: &'a [String]) -> &'a [String] {
        &lines[self.start + self.lead..self.end - self.trail]
    }
}

/// `lines` cut at its elision lines (a run of them, blank lines between included, counts
/// once): the parts, one more than the elisions.
fn split_elided(lines: &[String]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i < lines.len() {
        if elision(&lines[i]).is_none() {
            i += 1;
            continue;
        }
        parts.push((from, i));
        let mut end = i + 1;
        let mut j = i + 1;
        while j < lines.len() && (elision(&lines[j]).is_some() || is_blank(&lines[j])) {
            if elision(&lines[j]).is_some() {
                end = j + 1;
            }
            j += 1;
        }
        from = end;
        i = end;
    }
    parts.push((from, lines.len()));
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(k, &(start, end))| {
            let part = &lines[start..end];
            let lead = if k > 0 {
                part.iter().take_while(|l| is_blank(l)).count()
            } else {
                0
            };
            let trail = if k < last {
                part[lead..]
                    .iter()
                    .rev()
                    .take_while(|l| is_blank(l))
                    .count()
            } else {
                0
            };
            Part {
                start,
                end,
                lead,
                trail,
            }
        })
        .collect()
}

/// One candidate of an elided match: where each non-empty SEARCH part was found.
struct Chain<'a> {
    /// (part index, first line) for each non-empty part, in order.
    at: Vec<(usize, usize)>,
    end: usize,
    shift: Option<Shift<'a>>,
}

/// SEARCH with elisions: see [`locate`].
pub(super) fn locate_elided(
    place: &mut Place<'_>,
    search: &[String],
    replace: &[String],
) -> Result<Located, LocateError> {
    let lines = place.lines;
    let s_split = split_elided(search);
    if s_split
        .iter()
        .all(|p| p.core(search).iter().all(|l| is_blank(l)))
    {
        return Err(LocateError::EmptySearch);
    }
    let r_split = split_elided(replace);
    if s_split.len() != r_split.len() {
        return Err(LocateError::ElisionUnpaired {
            search: s_split.len() - 1,
            replace: r_split.len() - 1,
        });
    }
    let s_parts: Vec<&[String]> = s_split.iter().map(|p| p.core(search)).collect();
    // Blank lines next to an elision in REPLACE go with it only as far as SEARCH's did:
    // the elided lines kept bring the buffer's own.
    let r_parts: Vec<&[String]> = r_split
        .iter()
        .zip(&s_split)
        .map(|(r, s)| {
            let lead = r.lead.min(s.lead);
            let trail = r.trail.min(s.trail);
            &replace[r.start + lead..r.end - trail]
        })
        .collect();
    let wanted: Vec<usize> = (0..s_parts.len())
        .filter(|&k| s_parts[k].iter().any(|l| !is_blank(l)))
        .collect();
    for how in [
        MatchKind::Exact,
        MatchKind::TrailingWhitespace,
        MatchKind::Indentation,
    ] {
        let chains = elided_chains(place, &s_parts, &wanted, how)?;
        let chain = match (chains.count, chains.first) {
            (0, _) | (_, None) => continue,
            (1, Some(c)) => c,
            (n, Some(_)) => match <[Chain; 1]>::try_from(chains.inside) {
                Ok([c]) => c,
                Err(_) => return Err(LocateError::ElisionAmbiguous(n)),
            },
        };
        // Each REPLACE part, then the lines its elision stood for: those between the found
        // part before it and the found part after it. An elision before the first found part
        // or after the last stood for none.
        let mut new_lines = Vec::new();
        for (k, part) in r_parts.iter().enumerate() {
            match chain.shift {
                Some(sh) => new_lines.extend(part.iter().map(|l| sh.apply(l))),
                None => new_lines.extend(part.iter().cloned()),
            }
            let found = chain.at.iter().position(|&(p, _)| p == k);
            let (Some(n), Some(&(_, next))) = (found, found.and_then(|n| chain.at.get(n + 1)))
            else {
                continue;
            };
            let (p, at) = chain.at[n];
            new_lines.extend(lines[at + s_parts[p].len()..next].iter().cloned());
        }
        return Ok(Located {
            start: chain.at[0].1,
            end: chain.end,
            new_lines,
            how,
        });
    }
    Err(LocateError::NotFound)
}

/// The placements of an elided SEARCH under one strategy: how many, the first, and those
/// inside the selection (two at most: one decides, two are ambiguous).
struct Chains<'a> {
    count: usize,
    first: Option<Chain<'a>>,
    inside: Vec<Chain<'a>>,
}

/// Every placement of the non-empty SEARCH parts `wanted` (in order, each at the nearest
/// place after the one before) under one strategy, skipping claimed ranges. Its work beyond
/// finding each part's matches is paid from `place`'s budget.
fn elided_chains<'a, 'p: 'a>(
    place: &mut Place<'p>,
    parts: &[&'a [String]],
    wanted: &[usize],
    how: MatchKind,
) -> Result<Chains<'a>, LocateError> {
    let (lines, prefer): (&'a [String], _) = (place.lines, place.prefer);
    let Place { taken, budget, .. } = place;
    // Where each part matches on its own, ascending; a chain then looks up the nearest
    // start after the previous part by binary search.
    let mut hits: Vec<Vec<usize>> = Vec::with_capacity(wanted.len());
    for &k in wanted {
        let part = parts[k];
        let mut at = occurrences(lines, part, how);
        if how == MatchKind::Indentation {
            let mut fit = Vec::with_capacity(at.len());
            for i in at {
                if budget
                    .indentation(&lines[i..i + part.len()], part, None)?
                    .is_some()
                {
                    fit.push(i);
                }
            }
            at = fit;
        }
        hits.push(at);
    }
    let mut chains = Chains {
        count: 0,
        first: None,
        inside: Vec::new(),
    };
    let m0 = parts[wanted[0]].len();
    'starts: for &start in &hits[0] {
        let shift = match how {
            MatchKind::Indentation => {
                budget.indentation(&lines[start..start + m0], parts[wanted[0]], None)?
            }
            MatchKind::Exact | MatchKind::TrailingWhitespace => None,
        };
        let mut at = vec![(wanted[0], start)];
        let mut pos = start + m0;
        for (n, &k) in wanted.iter().enumerate().skip(1) {
            budget.spend(1)?;
            let m = parts[k].len();
            let from = hits[n].partition_point(|&i| i < pos);
            let next = match how {
                // The nearest start that also keeps the first part's indentation change.
                MatchKind::Indentation => {
                    let mut next = None;
                    for &i in &hits[n][from..] {
                        if budget
                            .indentation(&lines[i..i + m], parts[k], shift)?
                            .is_some()
                        {
                            next = Some(i);
                            break;
                        }
                    }
                    next
                }
                MatchKind::Exact | MatchKind::TrailingWhitespace => hits[n].get(from).copied(),
            };
            let Some(i) = next else { continue 'starts };
            at.push((k, i));
            pos = i + m;
        }
        if taken.overlaps(start, pos) {
            continue;
        }
        let chain = Chain {
            at,
            end: pos,
            shift,
        };
        chains.count += 1;
        if start >= prefer.0 && pos <= prefer.1 && chains.inside.len() < 2 {
            chains.inside.push(Chain {
                at: chain.at.clone(),
                ..chain
            });
        }
        if chains.first.is_none() {
            chains.first = Some(chain);
        }
    }
    Ok(chains)
}
