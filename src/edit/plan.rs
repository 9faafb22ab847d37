//! The hunks of one answer, placed block by block: a later block may edit what an earlier one
//! produced, and then merges with it. Locating one block in lines is [`super::locate`]'s job.

use super::locate::*;

/// One hunk of an answer: original lines `[start, end)` and what replaces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// 1-based, in the order hunks are made; a merged hunk gets a new one.
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub new: Vec<String>,
    /// The title of its first block.
    pub title: String,
}

/// What placing one block made: a hunk, which may supersede earlier hunks of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub hunk: Hunk,
    /// Indices of the earlier hunks this one replaces (the block edited their text).
    pub replaces: Vec<usize>,
    pub how: MatchKind,
}

/// The hunks of one answer, placed block by block, as ranges of the original lines.
///
/// A block is looked for in the original lines first, away from the ranges earlier blocks
/// claimed (so identical SEARCHes land on successive occurrences). When it matches nowhere
/// there, it is looked for in the text as the earlier blocks leave it — models edit a region
/// twice — and a match touching an earlier hunk's text merges with it: one hunk over the
/// union of their original lines, whose new text is the earlier text with this block
/// applied. Hunks never overlap, so each can be accepted on its own.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sorted by `start`, disjoint.
    hunks: Vec<Hunk>,
    made: usize,
    /// Every block placed so far, to recognise a repeat.
    blocks: Vec<(Vec<String>, Vec<String>, String)>,
}

impl Plan {
    /// The live hunks, in buffer order.
    pub fn hunks(&self) -> &[Hunk] {
        &self.hunks
    }

    /// A new file's whole text as the plan's hunk (the file has no lines yet).
    pub fn propose(&mut self, new: Vec<String>, title: &str) -> Hunk {
        self.insert(0, 0, new, MatchKind::Exact, title).hunk
    }

    /// `lines` with every hunk applied.
    pub fn apply(&self, lines: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(lines.len());
        let mut at = 0;
        for h in &self.hunks {
            out.extend_from_slice(&lines[at..h.start]);
            out.extend(h.new.iter().cloned());
            at = h.end;
        }
        out.extend_from_slice(&lines[at..]);
        out
    }

    /// Places one block; see the type's doc. `prefer` as for [`locate`].
    pub fn place(
        &mut self,
        lines: &[String],
        search: &[String],
        replace: &[String],
        prefer: (usize, usize),
        title: &str,
    ) -> Result<Placed, LocateError> {
        let taken: Vec<(usize, usize)> = self.hunks.iter().map(|h| (h.start, h.end)).collect();
        let placed = match locate(lines, search, replace, prefer, &taken) {
            Ok(found) => self.insert(found.start, found.end, found.new_lines, found.how, title),
            Err(LocateError::NotFound) if !self.hunks.is_empty() => {
                self.place_on_edited(lines, search, replace, prefer, title)?
            }
            Err(e) => return Err(e),
        };
        self.blocks
            .push((search.to_vec(), replace.to_vec(), title.to_string()));
        Ok(placed)
    }

    fn place_on_edited(
        &mut self,
        lines: &[String],
        search: &[String],
        replace: &[String],
        prefer: (usize, usize),
        title: &str,
    ) -> Result<Placed, LocateError> {
        if let Some((_, _, first)) = self
            .blocks
            .iter()
            .find(|(s, r, _)| s == search && r == replace)
        {
            return Err(LocateError::Repeats(first.clone()));
        }
        let edited = self.apply(lines);
        // Where each hunk's text sits in `edited`.
        let mut spans = Vec::with_capacity(self.hunks.len());
        let mut shift: isize = 0;
        for h in &self.hunks {
            let s = (h.start as isize + shift) as usize;
            spans.push((s, s + h.new.len()));
            shift += h.new.len() as isize - (h.end - h.start) as isize;
        }
        let to_edited = |row: usize| -> usize {
            let mut shift: isize = 0;
            for (h, &(s, _)) in self.hunks.iter().zip(&spans) {
                if row < h.end {
                    return if row <= h.start {
                        (row as isize + shift) as usize
                    } else {
                        s
                    };
                }
                shift += h.new.len() as isize - (h.end - h.start) as isize;
            }
            (row as isize + shift).max(0) as usize
        };
        let prefer_edited = (
            to_edited(prefer.0.min(lines.len())),
            to_edited(prefer.1.min(lines.len())),
        );
        let found = match locate(&edited, search, replace, prefer_edited, &[]) {
            Ok(found) => found,
            Err(LocateError::NotFound) => {
                // Written against the original text, where an earlier block claimed the lines?
                return Err(match locate(lines, search, replace, prefer, &[]) {
                    Ok(f) => match self
                        .hunks
                        .iter()
                        .filter(|h| h.start < f.end && f.start < h.end)
                        .min_by_key(|h| h.index)
                    {
                        Some(h) => LocateError::Overlaps(h.title.clone()),
                        None => LocateError::NotFound,
                    },
                    Err(_) => LocateError::NotFound,
                });
            }
            Err(e) => return Err(e),
        };
        let (fs, fe) = (found.start, found.end);
        // Hunks whose text the match touches: overlapping it, or deleted inside it.
        let touched: Vec<usize> = (0..self.hunks.len())
            .filter(|&i| {
                let (s, e) = spans[i];
                (s < fe && fs < e) || (s == e && fs < s && s < fe)
            })
            .collect();
        // An edited row outside every hunk's text back to the original: the hunks before it
        // (a deletion exactly at `row` is before it when `row` starts a range, after it when
        // `row` ends one).
        let to_original = |row: usize, is_end: bool| -> usize {
            let mut shift: isize = 0;
            for (h, &(s, e)) in self.hunks.iter().zip(&spans) {
                let before = if is_end { s < row } else { e <= row };
                if !before {
                    break;
                }
                shift += h.new.len() as isize - (h.end - h.start) as isize;
            }
            (row as isize - shift) as usize
        };
        let (Some(&first), Some(&last)) = (touched.first(), touched.last()) else {
            // Only unchanged text after all (a looser strategy than the original allowed).
            let (start, end) = (to_original(fs, false), to_original(fe, true));
            return Ok(self.insert(start, end, found.new_lines, found.how, title));
        };
        let (es, ee) = (fs.min(spans[first].0), fe.max(spans[last].1));
        let start = if fs < spans[first].0 {
            to_original(fs, false)
        } else {
            self.hunks[first].start
        };
        let end = if fe > spans[last].1 {
            to_original(fe, true)
        } else {
            self.hunks[last].end
        };
        let mut new = edited[es..fs].to_vec();
        new.extend(found.new_lines);
        new.extend_from_slice(&edited[fe..ee]);
        let old: Vec<Hunk> = self.hunks.drain(first..=last).collect();
        let title = old
            .iter()
            .min_by_key(|h| h.index)
            .map_or(title, |h| h.title.as_str())
            .to_string();
        let mut placed = self.insert(start, end, new, found.how, &title);
        placed.replaces = old.iter().map(|h| h.index).collect();
        placed.replaces.sort_unstable();
        Ok(placed)
    }

    fn insert(
        &mut self,
        start: usize,
        end: usize,
        new: Vec<String>,
        how: MatchKind,
        title: &str,
    ) -> Placed {
        self.made += 1;
        let hunk = Hunk {
            index: self.made,
            start,
            end,
            new,
            title: title.to_string(),
        };
        let at = self.hunks.partition_point(|h| h.start < start);
        self.hunks.insert(at, hunk.clone());
        Placed {
            hunk,
            replaces: Vec::new(),
            how,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    /// What models write that frugal keeps refusing (issue 15, "Answers real models write"):
    /// a SEARCH whose lines differ from the file's in indentation one by one (a peer that
    /// accepts it writes mis-indented code), and one differing in a run of spaces inside a
    /// line (inside a line, spaces can be the text: strings, alignment, Markdown, Make and
    /// YAML; a match that ignores them would edit text other than what the model saw). A
    /// SEARCH shifted as a whole is placed, in the file's indentation.
    #[test]
    fn whitespace_the_file_does_not_have_is_refused_and_a_consistent_shift_placed() {
        let file = s(&["fn f() {", "    let x = 1;", "        g(x);", "}"]);
        let place = |search: &[&str], replace: &[&str]| {
            Plan::default().place(&file, &s(search), &s(replace), (0, 4), "t")
        };
        // One by one: the first line lost 4 spaces, the second 2.
        assert_eq!(
            place(
                &["let x = 1;", "      g(x);"],
                &["let x = 2;", "      g(x);"]
            ),
            Err(LocateError::NotFound)
        );
        // A run of spaces inside a line.
        assert_eq!(
            place(&["    let  x = 1;"], &["    let  x = 2;"]),
            Err(LocateError::NotFound)
        );
        assert_eq!(
            place(&["    let x  =  1;"], &["    let x = 2;"]),
            Err(LocateError::NotFound)
        );
        // Shifted as a whole (4 spaces less): placed, re-indented as the file is.
        let placed = place(&["let x = 1;", "    g(x);"], &["let x = 2;", "    g(x);"]).unwrap();
        assert_eq!(placed.how, MatchKind::Indentation);
        assert_eq!(placed.hunk.new, s(&["    let x = 2;", "        g(x);"]));
    }
}
