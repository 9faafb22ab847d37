//! Incremental parser for aider-style SEARCH/REPLACE edit blocks.
//!
//! The model's answer streams in as arbitrary text pieces, and we want to
//! preview each edit the moment its block is complete rather than after the
//! whole answer arrived. The parser therefore works line by line: it buffers
//! only the current unfinished line and advances a small state machine on every
//! complete line. Each byte is looked at a constant number of times, so the
//! total work is linear in the answer's size however finely it is split (one
//! char at a time, mid-marker, between `\r` and `\n`, ...).
//!
//! Models are sloppy about the surrounding markdown, so the parser is lenient
//! outside blocks (fences with any info string, aider's `<source>` tags, prose,
//! a file-name line) and strict inside them: SEARCH/REPLACE lines are kept
//! verbatim because the SEARCH text must later be found in the buffer and the
//! REPLACE text is what ends up in it. A file-name line names the next block
//! (or every block of the fence that follows it, whatever the fence: ```,
//! ````, ~~~, `<source>`); prose in between forgets it.
//!
//! Markers may be 5 to 9 chars long (aider's grammar; a line of 10 or more
//! `=` is common text, so longer markers are not markers), indented (inside a
//! block: as its SEARCH marker, or not at all) and followed by punctuation
//! (`<<<<<<< SEARCH>`). What models get wrong about them, and how it is read:
//! - A second `=======` ends the replacement, as `>>>>>>> REPLACE` does
//!   (aider's rule): what follows up to the next SEARCH is outside any block,
//!   an orphan `>>>>>>> REPLACE` or a second copy of the replacement included.
//!   Directly after the first divider (the replacement still empty) it is the
//!   divider repeated, and dropped.
//! - `<<<<<<< SEARCH` inside a replacement (the REPLACE marker forgotten):
//!   closes the block before it. Its replacement ends at its code block's
//!   closing fence (or before a file-name line after a blank line), without
//!   the blank lines that separated it from the next block.
//! - A line that is only a marker never reaches a buffer: a block whose
//!   replacement still holds one (a marker at a foreign indentation, read as
//!   text inside the block) is reported by title ([`Finish::malformed`]).
//! - A block with no `=======` before its REPLACE marker or the next SEARCH
//!   marker is not an edit: it is reported by title ([`Finish::malformed`]).
//! - A block still open when the answer ends is reported by title
//!   ([`Finish::unterminated`]).

use std::mem;

/// Longest title, in chars, before it is cut; keeps previews and messages on one line.
const TITLE_MAX_CHARS: usize = 60;

/// One SEARCH/REPLACE edit as the model wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The file-name line seen just before the block or its fence, if any.
    pub file: Option<String>,
    /// SEARCH lines, without line terminators.
    pub search: Vec<String>,
    /// REPLACE lines, without line terminators.
    pub replace: Vec<String>,
}

impl Block {
    /// How the block is named to the user: its first non-blank SEARCH line,
    /// trimmed, at most 60 chars (char boundary safe, "…" appended when cut);
    /// "(empty SEARCH)" when none.
    ///
    /// The SEARCH text is what the user recognises in their buffer, so it names
    /// the block better than an index does.
    pub fn title(&self) -> String {
        title_of(&self.search)
    }
}

/// Shared by [`Block::title`] and the unterminated-block report, which has no
/// `Block` to call it on.
fn title_of(search: &[String]) -> String {
    let Some(line) = search.iter().map(|l| l.trim()).find(|l| !l.is_empty()) else {
        return "(empty SEARCH)".to_string();
    };
    // `char_indices` keeps the cut on a char boundary, so multibyte text can't panic.
    match line.char_indices().nth(TITLE_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
        None => line.to_string(),
    }
}

/// What [`BlockParser::finish`] found at the end of the answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Finish {
    /// Blocks completed by the end of the answer (e.g. a last marker line with no newline).
    pub blocks: Vec<Block>,
    /// Title of a block that was opened but never closed, if any.
    pub unterminated: Option<String>,
    /// Blocks that cannot be read as SEARCH/REPLACE edits, in answer order.
    pub malformed: Vec<Malformed>,
}

/// A block that is not an edit (e.g. no `=======` between its SEARCH and REPLACE markers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// As [`Block::title`].
    pub title: String,
    /// What is wrong, said to the user after the title.
    pub why: String,
}

/// A block whose SEARCH marker was seen but whose REPLACE marker wasn't yet.
#[derive(Debug)]
struct OpenBlock {
    file: Option<String>,
    search: Vec<String>,
    replace: Vec<String>,
    /// Whether the `=======` divider was seen, i.e. lines now go to `replace`.
    in_replace: bool,
    /// The leading whitespace of the SEARCH marker line: markers inside the block may carry
    /// it (a block indented as a whole, e.g. under a list item) or none.
    indent: String,
    /// The fence the block was opened in (its char and length), if any.
    fence: Option<(char, usize)>,
}

/// The three marker lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// `<<<<<<< SEARCH`
    Search,
    /// `=======`
    Divider,
    /// `>>>>>>> REPLACE`
    Replace,
}

/// Streaming parser: feed it the answer piece by piece with [`push`](Self::push),
/// then call [`finish`](Self::finish).
#[derive(Debug, Default)]
pub struct BlockParser {
    /// The current line, not yet terminated by `\n`. The only text ever buffered.
    partial: String,
    /// The block being read, if any.
    open: Option<OpenBlock>,
    /// A file-name line seen outside blocks, waiting for a block (or fence) to claim it.
    /// Prose lines clear it; blank lines and fence lines don't.
    pending_file: Option<String>,
    /// The fence we are in (outside a block): its char and length.
    in_fence: Option<(char, usize)>,
    /// The file name claimed by the current fence, inherited by every block in it
    /// (models often put several blocks for one file in one fence).
    fence_file: Option<String>,
    /// Blocks returned so far.
    completed: usize,
    /// Blocks that were not edits, reported by [`finish`](Self::finish).
    malformed: Vec<Malformed>,
}

impl BlockParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next piece of the answer. Returns the blocks this piece
    /// completed, in order — a block is returned as soon as its
    /// `>>>>>>> REPLACE` line is complete (its line terminator seen), or the
    /// next block's `<<<<<<< SEARCH` line when the model forgot that marker.
    ///
    /// Only the new piece is scanned for line ends; earlier text is never
    /// rescanned, which keeps streaming one char at a time linear overall.
    pub fn push(&mut self, piece: &str) -> Vec<Block> {
        let mut done = Vec::new();
        let mut rest = piece;
        while let Some(nl) = rest.find('\n') {
            self.partial.push_str(&rest[..nl]);
            let line = mem::take(&mut self.partial);
            self.line(line, &mut done);
            rest = &rest[nl + 1..];
        }
        self.partial.push_str(rest);
        done
    }

    /// The answer ended.
    ///
    /// The last line often has no terminator, so it is processed now; a block
    /// still open afterwards is reported by title so the user learns that the
    /// answer was cut off instead of silently losing an edit. The parser is left
    /// ready for a new answer (only [`completed`](Self::completed) keeps counting).
    pub fn finish(&mut self) -> Finish {
        let mut blocks = Vec::new();
        if !self.partial.is_empty() {
            let line = mem::take(&mut self.partial);
            self.line(line, &mut blocks);
        }
        let unterminated = self.open.take().map(|open| title_of(&open.search));
        self.pending_file = None;
        self.in_fence = None;
        self.fence_file = None;
        Finish {
            blocks,
            unterminated,
            malformed: mem::take(&mut self.malformed),
        }
    }

    /// Count of blocks completed so far.
    pub fn completed(&self) -> usize {
        self.completed
    }

    /// Advance the state machine by one complete line (terminator already removed).
    fn line(&mut self, mut line: String, out: &mut Vec<Block>) {
        // CRLF answers: the "\r" may have arrived in an earlier piece than the
        // "\n", which is why it is stripped here and not while splitting.
        if line.ends_with('\r') {
            line.pop();
        }
        let Some(open) = self.open.as_mut() else {
            self.outside(&line);
            return;
        };
        // Inside a block a marker counts only at the block's own indentation (or none):
        // an indented `=======` is more likely content there.
        let marker = marker(&line)
            .and_then(|(m, indent)| (indent.is_empty() || indent == open.indent).then_some(m));
        match (open.in_replace, marker) {
            (false, Some(Marker::Divider)) => open.in_replace = true,
            (false, Some(Marker::Search)) if open.search.iter().all(|l| is_blank(l)) => {
                // The marker repeated before any SEARCH text: nothing lost.
                open.search.clear();
            }
            (false, Some(Marker::Search)) => {
                let open = self.open.take().expect("a block is open");
                self.malformed(&open, "a new <<<<<<< SEARCH began before its ======= line");
                self.outside(&line);
            }
            (false, Some(Marker::Replace)) => {
                let open = self.open.take().expect("a block is open");
                self.malformed(&open, "it has no ======= line between SEARCH and REPLACE");
            }
            // Two dividers in a row: the model repeated it (ending the replacement there would
            // leave it empty).
            (true, Some(Marker::Divider)) if open.replace.is_empty() => {}
            // Aider's rule: a second divider ends the replacement as its REPLACE marker does;
            // what follows up to the next SEARCH is outside any block (an orphan REPLACE
            // marker, a copy of the replacement written twice).
            (true, Some(Marker::Replace | Marker::Divider)) => {
                let open = self.open.take().expect("a block is open");
                out.extend(self.close(open));
            }
            (true, Some(Marker::Search)) => {
                // The model forgot the REPLACE marker and began the next block.
                let open = self.open.take().expect("a block is open");
                out.extend(self.close_before_next(open));
                self.outside(&line);
            }
            (false, _) => open.search.push(line),
            (true, _) => open.replace.push(line),
        }
    }

    /// The finished block, or `None` when its replacement holds a line that is only a marker
    /// (one at a foreign indentation, read as text inside the block): never written into a
    /// buffer, the block is reported instead.
    fn close(&mut self, open: OpenBlock) -> Option<Block> {
        if let Some(m) = open.replace.iter().find(|l| marker(l).is_some()) {
            let why = format!(
                "its replacement holds the marker line \"{}\": not applied",
                m.trim()
            );
            self.malformed(&open, &why);
            return None;
        }
        self.completed += 1;
        Some(Block {
            file: open.file,
            search: open.search,
            replace: open.replace,
        })
    }

    /// Closes a block whose replacement ran into the next `<<<<<<< SEARCH` line: what
    /// follows its code block's closing fence, or a file-name line after a blank line, is
    /// the answer's text around the blocks (read again as such, so the next block gets its
    /// file name and fence), and blank lines beyond those SEARCH ends with are separators.
    fn close_before_next(&mut self, mut open: OpenBlock) -> Option<Block> {
        let mut after = Vec::new();
        if let Some(fence) = open.fence {
            let closing = open.replace.iter().position(|l| closes(fence, l.trim()));
            if let Some(at) = closing {
                after = open.replace.split_off(at);
            }
        }
        if after.is_empty() {
            let content = open.replace.iter().rposition(|l| !is_blank(l));
            if let Some(at) = content.filter(|&at| at > 0) {
                let named = file_name(open.replace[at].trim()).is_some();
                if named && is_blank(&open.replace[at - 1]) {
                    after = open.replace.split_off(at);
                }
            }
        }
        let keep_blank = open.search.iter().rev().take_while(|l| is_blank(l)).count();
        trim_blank_end(&mut open.replace, keep_blank);
        let block = self.close(open);
        for line in after {
            self.outside(&line);
        }
        block
    }

    fn malformed(&mut self, open: &OpenBlock, why: &str) {
        self.malformed.push(Malformed {
            title: title_of(&open.search),
            why: why.to_string(),
        });
    }

    /// A line outside any block: a SEARCH marker, a fence, a file name, or prose.
    fn outside(&mut self, line: &str) {
        if let Some((Marker::Search, indent)) = marker(line) {
            let file = match self.pending_file.take() {
                Some(file) => Some(file),
                None if self.in_fence.is_some() => self.fence_file.clone(),
                None => None,
            };
            self.open = Some(OpenBlock {
                file,
                search: Vec::new(),
                replace: Vec::new(),
                in_replace: false,
                indent: indent.to_string(),
                fence: self.in_fence,
            });
            return;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            // A blank line between the file name and the fence/block is common.
            return;
        }
        let opens = match fence_of(trimmed) {
            // An info string means a new fence even if we think one is open: better than
            // swallowing the rest of the answer.
            Some((ch, len, info)) => {
                (self.in_fence.is_none() || !info.is_empty()).then_some((ch, len))
            }
            None => match source_tag(trimmed) {
                Some(true) => Some(SOURCE),
                Some(false) => None,
                None => {
                    self.pending_file = file_name(trimmed).map(str::to_string);
                    return;
                }
            },
        };
        match opens {
            // The path line before a fence names the fence's blocks, whatever the fence.
            Some(fence) => {
                self.in_fence = Some(fence);
                self.fence_file = self.pending_file.take();
            }
            None => {
                self.in_fence = None;
                self.fence_file = None;
                self.pending_file = None;
            }
        }
    }
}

/// Aider's alternative fence, `<source>python` … `</source>`, as a fence: `<` and length 0.
const SOURCE: (char, usize) = ('<', 0);

/// Whether `trimmed` is the line closing `fence`.
fn closes(fence: (char, usize), trimmed: &str) -> bool {
    if fence == SOURCE {
        return source_tag(trimmed) == Some(false);
    }
    fence_of(trimmed).is_some_and(|(c, n, info)| c == fence.0 && n >= fence.1 && info.is_empty())
}

/// If `trimmed` is aider's alternative fence: `Some(true)` for `<source>` (with a language
/// or attributes after it), `Some(false)` for `</source>`.
fn source_tag(trimmed: &str) -> Option<bool> {
    let lower = trimmed.get(..9).map(str::to_ascii_lowercase);
    if lower.as_deref() == Some("</source>") && trimmed.len() == 9 {
        return Some(false);
    }
    let head = trimmed.get(..7)?;
    let next = trimmed[7..].chars().next()?;
    (head.eq_ignore_ascii_case("<source") && (next == '>' || next.is_whitespace())).then_some(true)
}
/// Drops blank lines at the end of `lines` beyond the first `keep`.
fn trim_blank_end(lines: &mut Vec<String>, keep: usize) {
    let blank = lines.iter().rev().take_while(|l| is_blank(l)).count();
    lines.truncate(lines.len() - blank.saturating_sub(keep));
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Which marker `line` is, with its leading whitespace: 5 to 9 marker chars, then (for
/// SEARCH/REPLACE) optional blanks and the word in any case, then nothing but punctuation
/// and whitespace (models write `<<<<<<< SEARCH>` or `SEARCH:`).
///
/// Models vary the marker length, indent it and leave trailing junk, so all are tolerated;
/// whether an indented marker counts inside a block is the caller's decision.
fn marker(line: &str) -> Option<(Marker, &str)> {
    let text = line.trim_start();
    let indent = &line[..line.len() - text.len()];
    let text = text.trim_end();
    let ch = text.chars().next()?;
    let (kind, word) = match ch {
        '<' => (Marker::Search, "SEARCH"),
        '=' => (Marker::Divider, ""),
        '>' => (Marker::Replace, "REPLACE"),
        _ => return None,
    };
    let rest = text.trim_start_matches(ch);
    // `ch` is ASCII, so the byte difference is the count of marker chars.
    if !(5..=9).contains(&(text.len() - rest.len())) {
        return None;
    }
    if word.is_empty() {
        return rest.is_empty().then_some((kind, indent));
    }
    let rest = rest.trim_start();
    let head = rest.get(..word.len())?;
    let junk = &rest[word.len()..];
    let is_junk = junk
        .chars()
        .all(|c| c.is_ascii_punctuation() || c.is_whitespace());
    (head.eq_ignore_ascii_case(word) && is_junk).then_some((kind, indent))
}

/// If `trimmed` is a markdown fence line (3+ backticks or tildes): its char, its length and
/// its info string (e.g. `python`, possibly empty).
fn fence_of(trimmed: &str) -> Option<(char, usize, &str)> {
    for ch in ['`', '~'] {
        let rest = trimmed.trim_start_matches(ch);
        let len = trimmed.len() - rest.len();
        if len >= 3 {
            return Some((ch, len, rest.trim()));
        }
    }
    None
}

/// If a trimmed line outside blocks looks like a file name, that name.
///
/// Heuristic on purpose: the name only labels the block for the user and the
/// caller, so a false positive is harmless while a miss loses the label. We
/// accept a single whitespace-free token, optionally dressed in markdown
/// (`` `x` ``, `**x**`, `### x`, `x:`), that contains a path separator or ends
/// in an extension. Prose has spaces, so it is rejected.
fn file_name(trimmed: &str) -> Option<&str> {
    const DRESS: &[char] = &['`', '*', '"', '\''];
    let name = trimmed.trim_start_matches('#').trim_start();
    // `File: src/a.rs`, `**Path:** src/a.rs`: the label goes.
    let unlabelled = name.trim_start_matches(DRESS);
    let name = ["file:", "path:"]
        .iter()
        .find_map(|label| {
            let head = unlabelled.get(..label.len())?;
            head.eq_ignore_ascii_case(label).then(|| {
                unlabelled[label.len()..]
                    .trim_start_matches(DRESS)
                    .trim_start()
            })
        })
        .unwrap_or(name);
    let name = name
        .trim_end_matches(':')
        .trim_matches(DRESS)
        .trim_end_matches(':');
    if name.is_empty() || name.chars().any(char::is_whitespace) || name.contains("://") {
        return None;
    }
    let has_separator = name.contains('/') || name.contains('\\');
    let has_extension = name.rsplit_once('.').is_some_and(|(_, ext)| {
        !ext.is_empty()
            && ext.len() <= 12
            && ext
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    (has_separator || has_extension).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn block(file: Option<&str>, search: &[&str], replace: &[&str]) -> Block {
        Block {
            file: file.map(str::to_string),
            search: s(search),
            replace: s(replace),
        }
    }

    /// Feed `pieces` to a fresh parser; all blocks (from push and finish) plus
    /// the unterminated title.
    fn run<'a>(pieces: impl IntoIterator<Item = &'a str>) -> (Vec<Block>, Option<String>) {
        let mut parser = BlockParser::new();
        let mut blocks = Vec::new();
        for piece in pieces {
            blocks.extend(parser.push(piece));
        }
        let fin = parser.finish();
        blocks.extend(fin.blocks);
        assert_eq!(parser.completed(), blocks.len());
        (blocks, fin.unterminated)
    }

    /// Prose, a fenced block with a file name before the fence, an unfenced
    /// block with a file name, a CRLF deletion block with a 6-char marker,
    /// multibyte text, fence-looking content, and a last 9/5-char block whose
    /// REPLACE marker has no newline.
    const SAMPLE: &str = concat!(
        "Here is the fix — two edits.\n",
        "\n",
        "src/main.rs\n",
        "```rust\n",
        "<<<<<<< SEARCH\n",
        "fn main() {\n",
        "    println!(\"hi\");\n",
        "}\n",
        "=======\n",
        "fn main() {\n",
        "    println!(\"héllo, 世界 🦀\");\n",
        "}\n",
        ">>>>>>> REPLACE\n",
        "```\n",
        "\n",
        "Some prose between blocks.\n",
        "lua/frugal/init.lua\n",
        "<<<<<<< SEARCH  \n",
        "local M = {}\n",
        "=======  \n",
        "local M = { version = 2 }\n",
        "```\n",
        ">>>>>>> REPLACE   \n",
        "Delete the helper:\r\n",
        "```\r\n",
        "<<<<<< SEARCH\r\n",
        "local function unused()\r\n",
        "\r\n",
        "end\r\n",
        "======\r\n",
        ">>>>>> REPLACE\r\n",
        "```\r\n",
        "And finally:\n",
        "<<<<<<<<< SEARCH\n",
        "x = 1\n",
        "=====\n",
        "x = 2\n",
        ">>>>> REPLACE",
    );

    fn sample_blocks() -> Vec<Block> {
        vec![
            block(
                Some("src/main.rs"),
                &["fn main() {", "    println!(\"hi\");", "}"],
                &["fn main() {", "    println!(\"héllo, 世界 🦀\");", "}"],
            ),
            block(
                Some("lua/frugal/init.lua"),
                &["local M = {}"],
                &["local M = { version = 2 }", "```"],
            ),
            block(None, &["local function unused()", "", "end"], &[]),
            block(None, &["x = 1"], &["x = 2"]),
        ]
    }

    #[test]
    fn sample_whole() {
        assert_eq!(run([SAMPLE]), (sample_blocks(), None));
    }

    #[test]
    fn sample_split_at_every_char_boundary() {
        let expected = (sample_blocks(), None);
        for i in (0..=SAMPLE.len()).filter(|&i| SAMPLE.is_char_boundary(i)) {
            let (a, b) = SAMPLE.split_at(i);
            assert_eq!(run([a, b]), expected, "split at byte {i}");
        }
    }

    #[test]
    fn sample_one_char_at_a_time() {
        let chars: Vec<String> = SAMPLE.chars().map(String::from).collect();
        assert_eq!(
            run(chars.iter().map(String::as_str)),
            (sample_blocks(), None)
        );
    }

    #[test]
    fn block_is_returned_when_its_marker_line_ends() {
        let mut parser = BlockParser::new();
        assert!(parser.push("<<<<<<< SEARCH\na\n=======\nb\n").is_empty());
        assert!(parser.push(">>>>>>> REPLACE\r").is_empty());
        assert_eq!(parser.push("\nprose"), vec![block(None, &["a"], &["b"])]);
        assert_eq!(parser.completed(), 1);
        assert_eq!(parser.finish(), Finish::default());
    }

    #[test]
    fn last_marker_without_newline_is_completed_by_finish() {
        let mut parser = BlockParser::new();
        assert!(parser
            .push("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE")
            .is_empty());
        let fin = parser.finish();
        assert_eq!(fin.blocks, vec![block(None, &["a"], &["b"])]);
        assert_eq!(fin.unterminated, None);
        assert_eq!(parser.completed(), 1);
    }

    #[test]
    fn unterminated_block_is_reported() {
        let answer = "intro\n<<<<<<< SEARCH\n\n   let x = compute();  \n=======\nlet x = 1;\n";
        assert_eq!(run([answer]), (vec![], Some("let x = compute();".into())));
        // Cut off before the divider: still reported, by its SEARCH text.
        assert_eq!(
            run(["<<<<<<< SEARCH\nfoo()"]),
            (vec![], Some("foo()".into()))
        );
        assert_eq!(
            run(["<<<<<<< SEARCH\n"]),
            (vec![], Some("(empty SEARCH)".into()))
        );
    }

    #[test]
    fn answer_without_blocks() {
        let answer = "I can't see the file.\n```lua\nprint('hi')\n```\n=======\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![], None));
        assert_eq!(run([""]), (vec![], None));
    }

    #[test]
    fn marker_lengths() {
        for n in [5, 7, 9] {
            let answer = format!(
                "{} SEARCH\na\n{}\nb\n{} REPLACE\n",
                "<".repeat(n),
                "=".repeat(n),
                ">".repeat(n)
            );
            assert_eq!(run([answer.as_str()]).0, vec![block(None, &["a"], &["b"])]);
        }
        // 4 or 10 marker chars are not markers.
        for n in [4, 10] {
            let answer = format!("{} SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", "<".repeat(n));
            assert_eq!(run([answer.as_str()]), (vec![], None));
        }
        // Inside a block they are plain content.
        let answer = "<<<<<<< SEARCH\n==========\n=======\n>>>> REPLACE\n>>>>>>> REPLACE\n";
        assert_eq!(
            run([answer]).0,
            vec![block(None, &["=========="], &[">>>> REPLACE"])]
        );
    }

    /// Aider's rule: a second `=======` ends the replacement; what follows up to the next
    /// SEARCH is outside any block (an orphan `>>>>>>> REPLACE` included).
    #[test]
    fn a_second_divider_ends_the_replacement() {
        // Aider's closing divider, then the fence's end and prose: no block left open.
        let answer = concat!(
            "a.py\n```python\n<<<<<<< SEARCH\na\n=======\nb\n=======\n```\n\nDone.\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        assert_eq!(
            run([answer]),
            (
                vec![
                    block(Some("a.py"), &["a"], &["b"]),
                    block(None, &["c"], &["d"])
                ],
                None
            )
        );
        // The answer's last block closed so: its edit is not lost.
        let answer = "a.py\n```python\n<<<<<<< SEARCH\na\n=======\nb\n=======\n```\n\nDone.\n";
        assert_eq!(
            run([answer]),
            (vec![block(Some("a.py"), &["a"], &["b"])], None)
        );
        // The replacement written twice around a divider, one REPLACE marker after: one copy.
        let answer = "<<<<<<< SEARCH\na\n=======\nb\nc\n=======\nb\nc\n>>>>>>> REPLACE\nprose\n";
        assert_eq!(
            run([answer]),
            (vec![block(None, &["a"], &["b", "c"])], None)
        );
        // A divider repeated before the REPLACE marker.
        let answer = "<<<<<<< SEARCH\na\n=======\nb\n=======\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![block(None, &["a"], &["b"])], None));
        let answer = "<<<<<<< SEARCH\na\n=======\nb\n=======\nc\n=======\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![block(None, &["a"], &["b"])], None));
        // Two dividers in a row: the replacement would be empty, so the second is a repeat.
        let answer = "<<<<<<< SEARCH\na\n=======\n=======\nb\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![block(None, &["a"], &["b"])], None));
        let answer = "<<<<<<< SEARCH\na\n=======\n=======\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![block(None, &["a"], &[])], None));
    }

    /// A line that is only a marker never reaches a replacement: one at a foreign indentation
    /// (read as text inside the block) makes the block malformed, reported by its title.
    #[test]
    fn no_marker_line_reaches_a_replacement() {
        let answer = "<<<<<<< SEARCH\nx\n=======\n  =====\ny\n>>>>>>> REPLACE\n";
        let mut parser = BlockParser::new();
        assert!(parser.push(answer).is_empty());
        let fin = parser.finish();
        assert!(fin.blocks.is_empty());
        assert_eq!(fin.malformed.len(), 1, "{fin:?}");
        assert_eq!(fin.malformed[0].title, "x");
        assert!(fin.malformed[0].why.contains("marker"), "{fin:?}");
        // A forgotten REPLACE marker (the next block's SEARCH closes it) is checked too.
        let answer = concat!(
            "<<<<<<< SEARCH\nx\n=======\n    >>>>>>> REPLACE\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        let mut parser = BlockParser::new();
        assert_eq!(parser.push(answer), vec![block(None, &["c"], &["d"])]);
        assert_eq!(parser.finish().malformed.len(), 1);
    }

    /// Marker noise other projects' edit-format tests show: accepted as it is.
    #[test]
    fn marker_noise_is_accepted() {
        for (head, divider, tail) in [
            ("<<<<<<< SEARCH>>", "=======", ">>>>>>> REPLACE"),
            ("<<<<<<<SEARCH", "=======", ">>>>>>>REPLACE"),
            ("<<<<<<< SEARCH", "======= ", ">>>>>>> REPLACE "),
        ] {
            let answer = format!("{head}\na\n{divider}\nb\n{tail}\n");
            assert_eq!(
                run([answer.as_str()]),
                (vec![block(None, &["a"], &["b"])], None),
                "{answer:?}"
            );
        }
        // More than 9 marker chars: not a marker (see `marker`), the answer holds no block.
        let answer = "<<<<<<<<<<< SEARCH\na\n===========\nb\n>>>>>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![], None));
    }

    #[test]
    fn search_marker_inside_a_replacement_closes_the_block_before_it() {
        let answer = concat!(
            "<<<<<<< SEARCH\na\n=======\nb\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        assert_eq!(
            run([answer]),
            (
                vec![block(None, &["a"], &["b"]), block(None, &["c"], &["d"])],
                None
            )
        );
        // Blank separators and a stray divider before the next block are not text of it;
        // blank lines SEARCH ends with are kept.
        let answer = concat!(
            "<<<<<<< SEARCH\na\n\n=======\nb\n\n=======\n\n\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        assert_eq!(
            run([answer]).0,
            vec![
                block(None, &["a", ""], &["b", ""]),
                block(None, &["c"], &["d"])
            ]
        );
    }

    #[test]
    fn a_fenced_block_without_replace_marker_ends_at_its_fence() {
        let answer = concat!(
            "x.py\n```python\n<<<<<<< SEARCH\na\n=======\nb\n```\n",
            "\nThen:\n\ny.py\n```python\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n```\n",
        );
        let expected = vec![
            block(Some("x.py"), &["a"], &["b"]),
            block(Some("y.py"), &["c"], &["d"]),
        ];
        assert_eq!(run([answer]), (expected.clone(), None));
        let chars: Vec<String> = answer.chars().map(String::from).collect();
        assert_eq!(run(chars.iter().map(String::as_str)), (expected, None));
        // Unfenced: a file-name line after a blank line names the next block.
        let answer = concat!(
            "x.py\n<<<<<<< SEARCH\na\n=======\nb\n\ny.py\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        assert_eq!(
            run([answer]).0,
            vec![
                block(Some("x.py"), &["a"], &["b"]),
                block(Some("y.py"), &["c"], &["d"])
            ]
        );
    }

    #[test]
    fn a_block_without_divider_is_reported_and_the_rest_parsed() {
        let answer = concat!(
            "<<<<<<< SEARCH\nlost()\n>>>>>>> REPLACE\n",
            "<<<<<<< SEARCH\nmissing()\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
        );
        let mut parser = BlockParser::new();
        let blocks = parser.push(answer);
        assert_eq!(blocks, vec![block(None, &["c"], &["d"])]);
        let fin = parser.finish();
        assert_eq!(fin.unterminated, None);
        let titles: Vec<&str> = fin.malformed.iter().map(|m| m.title.as_str()).collect();
        assert_eq!(titles, ["lost()", "missing()"]);
        assert!(fin.malformed.iter().all(|m| m.why.contains("=======")));
        // A repeated SEARCH marker before any SEARCH text is just a repeat.
        assert_eq!(
            run(["<<<<<<< SEARCH\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"]),
            (vec![block(None, &["a"], &["b"])], None)
        );
    }

    #[test]
    fn indented_markers() {
        // A block indented as a whole (e.g. under a list item).
        let answer = "1. First:\n   <<<<<<< SEARCH\n   a\n   =======\n   b\n   >>>>>>> REPLACE\n";
        assert_eq!(run([answer]).0, vec![block(None, &["   a"], &["   b"])]);
        // Unindented markers around an indented one: that one is text in SEARCH (in a
        // replacement it is refused: see no_marker_line_reaches_a_replacement).
        let answer = "<<<<<<< SEARCH\nx\n    =======\n=======\n  y\n>>>>>>> REPLACE\n";
        assert_eq!(
            run([answer]).0,
            vec![block(None, &["x", "    ======="], &["  y"])]
        );
        // Any indentation for the SEARCH marker outside a block.
        let answer = "\t<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]).0, vec![block(None, &["a"], &["b"])]);
    }

    #[test]
    fn markers_with_trailing_junk_or_another_case() {
        let answer = "<<<<<<< SEARCH>\na\n=======\nb\n>>>>>>> REPLACE>\n<<<<<<< search:\nc\n=======\nd\n>>>>>>> Replace\n";
        assert_eq!(
            run([answer]).0,
            vec![block(None, &["a"], &["b"]), block(None, &["c"], &["d"])]
        );
        // A word after the marker's word is not junk.
        let answer = "<<<<<<< SEARCH here\na\n=======\nb\n>>>>>>> REPLACE\n";
        assert_eq!(run([answer]), (vec![], None));
    }

    #[test]
    fn empty_search_is_returned() {
        let answer = "new.txt\n<<<<<<< SEARCH\n=======\nhello\n>>>>>>> REPLACE\n";
        let blocks = run([answer]).0;
        assert_eq!(blocks, vec![block(Some("new.txt"), &[], &["hello"])]);
        assert_eq!(blocks[0].title(), "(empty SEARCH)");
    }

    #[test]
    fn content_is_verbatim() {
        let answer = concat!(
            "```markdown\n",
            "<<<<<<< SEARCH\n",
            "```python\n",
            "\tx = 1   \n",
            "```\n",
            "=======\n",
            "  ~~~\n",
            "README.md\n",
            ">>>>>>> REPLACE\n",
            "```\n",
        );
        assert_eq!(
            run([answer]).0,
            vec![block(
                None,
                &["```python", "\tx = 1   ", "```"],
                &["  ~~~", "README.md"]
            )]
        );
    }

    #[test]
    fn file_names() {
        let answer = concat!(
            "`path/to/x.lua`\n",
            "\n",
            "```lua\n",
            "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n",
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n",
            "```\n",
            "<<<<<<< SEARCH\ne\n=======\nf\n>>>>>>> REPLACE\n",
            "**.gitignore**:\n",
            "<<<<<<< SEARCH\ng\n=======\nh\n>>>>>>> REPLACE\n",
            "src/main.rs\n",
            "Now, the other change.\n",
            "<<<<<<< SEARCH\ni\n=======\nj\n>>>>>>> REPLACE\n",
        );
        let files: Vec<Option<String>> = run([answer]).0.into_iter().map(|b| b.file).collect();
        assert_eq!(
            files,
            vec![
                Some("path/to/x.lua".into()),
                // Same fence: same file.
                Some("path/to/x.lua".into()),
                // After the fence closed: no name.
                None,
                Some(".gitignore".into()),
                // Prose after the name: it wasn't "right before".
                None,
            ]
        );
    }

    /// A path line stays attached to the next block whatever fence follows it, aider's
    /// `<source>` tags included (the shape of aider's multi-file answers).
    #[test]
    fn a_path_line_stays_attached_whatever_fence_follows() {
        let edit = "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n";
        for (open, close) in [
            ("```", "```"),
            ("```python", "```"),
            ("````python", "````"),
            ("~~~python", "~~~"),
            ("<source>python", "</source>"),
            ("<source>", "</source>"),
            ("  <source lang=\"python\">", "</source>"),
        ] {
            let answer = format!("Change b:\n\nb.py\n{open}\n{edit}{close}\n");
            let chars: Vec<String> = answer.chars().map(String::from).collect();
            let expected = (vec![block(Some("b.py"), &["a"], &["b"])], None);
            assert_eq!(run([answer.as_str()]), expected, "{open}");
            assert_eq!(run(chars.iter().map(String::as_str)), expected, "{open}");
        }
        // Aider's multi-file answer: each file's blocks in their own <source> tags.
        let answer = concat!(
            "a.py\n<source>python\n<<<<<<< SEARCH\nx\n=======\nX\n>>>>>>> REPLACE\n</source>\n\n",
            "b.py\n<source>python\n<<<<<<< SEARCH\ny\n=======\nY\n>>>>>>> REPLACE\n",
            "<<<<<<< SEARCH\nz\n=======\nZ\n>>>>>>> REPLACE\n</source>\n\n",
            "<<<<<<< SEARCH\nw\n=======\nW\n>>>>>>> REPLACE\n",
        );
        let files: Vec<Option<String>> = run([answer]).0.into_iter().map(|b| b.file).collect();
        assert_eq!(
            files,
            [
                Some("a.py".into()),
                Some("b.py".into()),
                Some("b.py".into()),
                None
            ]
        );
        // A block inside <source> without its REPLACE marker ends at </source>.
        let answer = concat!(
            "b.py\n<source>python\n<<<<<<< SEARCH\ny\n=======\nY\n</source>\n\n",
            "c.py\n<source>python\n<<<<<<< SEARCH\nz\n=======\nZ\n>>>>>>> REPLACE\n</source>\n",
        );
        assert_eq!(
            run([answer]).0,
            [
                block(Some("b.py"), &["y"], &["Y"]),
                block(Some("c.py"), &["z"], &["Z"])
            ]
        );
    }

    #[test]
    fn file_name_heuristic() {
        for yes in [
            "src/main.rs",
            "x.lua",
            "`a/b`",
            "### lua/frugal.lua",
            "C:\\x\\y.txt",
        ] {
            assert!(file_name(yes).is_some(), "{yes}");
        }
        for no in [
            "Here is the fix:",
            "e.g.",
            "Done.",
            "foo.bar()",
            "https://x.org/a",
            "```",
        ] {
            assert_eq!(file_name(no), None, "{no}");
        }
        for (line, path) in [
            ("File: src/a.rs", "src/a.rs"),
            ("**File:** `src/a.rs`", "src/a.rs"),
            ("path: ./lua/x.lua", "./lua/x.lua"),
            ("src\\a.rs", "src\\a.rs"),
        ] {
            assert_eq!(file_name(line), Some(path), "{line}");
        }
    }

    #[test]
    fn each_block_carries_the_path_before_it() {
        let answer = format!(
            "src/a.rs\n{}\nThen:\n\n`src/b.rs`\n```rust\n{}{}```\n",
            "<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE",
            "<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n",
            "<<<<<<< SEARCH\nc\n=======\nC\n>>>>>>> REPLACE\n",
        );
        let blocks = run([answer.as_str()]).0;
        let files: Vec<Option<&str>> = blocks.iter().map(|b| b.file.as_deref()).collect();
        assert_eq!(
            files,
            [Some("src/a.rs"), Some("src/b.rs"), Some("src/b.rs")]
        );
    }

    #[test]
    fn multibyte_content_and_title() {
        let long = "ж".repeat(70);
        let answer =
            format!("<<<<<<< SEARCH\n  \n  {long}\n=======\n🦀 ünïcödé\n>>>>>>> REPLACE\n");
        let blocks = run([answer.as_str()]).0;
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].replace, vec!["🦀 ünïcödé".to_string()]);
        let title = blocks[0].title();
        assert_eq!(title, format!("{}…", "ж".repeat(60)));
        assert_eq!(block(None, &["  short  "], &[]).title(), "short");
        assert_eq!(block(None, &[" ", ""], &[]).title(), "(empty SEARCH)");
    }

    #[test]
    fn parser_is_reusable_after_finish() {
        let mut parser = BlockParser::new();
        parser.push("<<<<<<< SEARCH\nlost");
        assert_eq!(parser.finish().unterminated, Some("lost".into()));
        assert_eq!(
            parser.push("<<<<<<< SEARCH\na\n=======\n>>>>>>> REPLACE\n"),
            vec![block(None, &["a"], &[])]
        );
    }

    #[test]
    fn long_answer_one_char_at_a_time() {
        // ~5,000 tokens ≈ 20,000 chars, mostly inside a few long blocks. Its time, at 1× and
        // 10×, is in `cargo bench --bench edit_parse`.
        let mut answer = String::from("Edits follow.\n");
        for i in 0..10 {
            answer.push_str(&format!("src/f{i}.rs\n```rust\n<<<<<<< SEARCH\n"));
            for j in 0..40 {
                answer.push_str(&format!("    let value_{j} = compute({j}, {i});\n"));
            }
            answer.push_str("=======\n");
            for j in 0..40 {
                answer.push_str(&format!("    let value_{j} = compute_v2({j}, {i});\n"));
            }
            answer.push_str(">>>>>>> REPLACE\n```\n");
        }
        assert!(answer.len() > 20_000);
        let mut parser = BlockParser::new();
        let mut blocks = Vec::new();
        let mut buf = [0u8; 4];
        for c in answer.chars() {
            blocks.extend(parser.push(c.encode_utf8(&mut buf)));
        }
        blocks.extend(parser.finish().blocks);
        assert_eq!(blocks.len(), 10);
        assert!(blocks
            .iter()
            .all(|b| b.search.len() == 40 && b.replace.len() == 40));
        assert_eq!(blocks[3].file.as_deref(), Some("src/f3.rs"));
    }

    /// Property tests: `PROPTEST_CASES` sets how many cases (128 by default; the long run
    /// before a release uses far more).
    mod props {
        use super::*;
        use proptest::prelude::*;

        use crate::edit::props_config as config;

        /// Lines that exercise every state: markers in their variants, fences, names,
        /// prose, blanks, and arbitrary text.
        fn any_line() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => prop::sample::select(vec![
                    "<<<<<<< SEARCH", "  <<<<<<< SEARCH>", "<<<<< search:", "<<<<<<<<<< SEARCH",
                    "=======", "  =======", "=====", "==========", ">>>>>>> REPLACE",
                    "  >>>>>>> REPLACE", ">>>>>>>>> Replace>", "```", "```rust", "~~~~", "x.py",
                    "**src/a.rs**", "", "   ", "Here is the fix.", "é🦀 ünï", "\t=======",
                ])
                .prop_map(str::to_string),
                2 => "\\PC{0,12}",
                1 => "[<=>` ]{0,10}",
            ]
        }

        fn any_answer() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(any_line(), 0..40),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(lines, crlf, last_newline)| {
                    let nl = if crlf { "\r\n" } else { "\n" };
                    let mut s = lines.join(nl);
                    if last_newline {
                        s.push_str(nl);
                    }
                    s
                })
        }

        /// Everything the parser says about an answer fed in `pieces`.
        fn parse<'a>(pieces: impl IntoIterator<Item = &'a str>) -> (Vec<Block>, Finish) {
            let mut parser = BlockParser::new();
            let mut blocks = Vec::new();
            for piece in pieces {
                blocks.extend(parser.push(piece));
            }
            let fin = parser.finish();
            assert_eq!(parser.completed(), blocks.len() + fin.blocks.len());
            (blocks, fin)
        }

        /// Cut `s` at the given fractions (on char boundaries).
        fn split(s: &str, cuts: &[usize]) -> Vec<String> {
            let mut at: Vec<usize> = cuts
                .iter()
                .map(|c| c % (s.len() + 1))
                .map(|mut i| {
                    while !s.is_char_boundary(i) {
                        i -= 1;
                    }
                    i
                })
                .collect();
            at.push(0);
            at.push(s.len());
            at.sort_unstable();
            at.windows(2).map(|w| s[w[0]..w[1]].to_string()).collect()
        }

        /// A content line: anything but a marker.
        fn content() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9 _(){};=#.<>`-]{0,12}".prop_filter("not a marker", |l| marker(l).is_none())
        }

        type Spec = (Vec<String>, Vec<String>, Option<String>, bool);

        fn any_block() -> impl Strategy<Value = Spec> {
            (
                prop::collection::vec(content(), 0..6),
                prop::collection::vec(content(), 0..6),
                prop::option::of("[a-z]{1,6}/[a-z]{1,6}\\.rs"),
                any::<bool>(),
            )
        }

        proptest! {
            #![proptest_config(config())]

            /// However the answer is split into pieces, the parser says the same, and never
            /// panics.
            #[test]
            fn same_result_however_split(
                answer in any_answer(),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                let (whole_blocks, whole_fin) = parse([answer.as_str()]);
                let pieces = split(&answer, &cuts);
                let (blocks, fin) = parse(pieces.iter().map(String::as_str));
                let mut all = blocks;
                all.extend(fin.blocks.clone());
                let mut whole = whole_blocks;
                whole.extend(whole_fin.blocks.clone());
                prop_assert_eq!(all, whole);
                prop_assert_eq!(fin.unterminated, whole_fin.unterminated);
                prop_assert_eq!(fin.malformed, whole_fin.malformed);
            }

            /// Whatever an answer holds, no block's replacement has a line that is only a
            /// marker (it would be written into the buffer).
            #[test]
            fn no_replacement_line_is_a_marker(answer in any_answer()) {
                let (mut blocks, fin) = parse([answer.as_str()]);
                blocks.extend(fin.blocks);
                for b in blocks {
                    prop_assert!(b.replace.iter().all(|l| marker(l).is_none()), "{:?}", b);
                }
            }

            /// Well-formed blocks, dressed as models dress them (fences, file names, prose,
            /// CRLF, marker lengths, indented markers, trailing junk), come back exactly.
            #[test]
            fn well_formed_blocks_come_back_exactly(
                specs in prop::collection::vec(any_block(), 1..5),
                crlf in any::<bool>(),
                marks in prop::collection::vec((5usize..=9, 0usize..3, any::<bool>()), 5),
                cuts in prop::collection::vec(any::<usize>(), 0..6),
            ) {
                let mut lines: Vec<String> = vec!["Here you go.".into()];
                let mut expected = Vec::new();
                for (i, (search, replace, file, fenced)) in specs.iter().enumerate() {
                    let (n, indent, junk) = marks[i % marks.len()];
                    let pad = " ".repeat(indent);
                    if let Some(f) = file {
                        lines.push(f.clone());
                    }
                    if *fenced {
                        lines.push("```rust".into());
                    }
                    lines.push(format!("{pad}{} SEARCH{}", "<".repeat(n), if junk { ">" } else { "" }));
                    lines.extend(search.iter().cloned());
                    lines.push(format!("{pad}{}", "=".repeat(n)));
                    lines.extend(replace.iter().cloned());
                    lines.push(format!("{pad}{} REPLACE", ">".repeat(n)));
                    if *fenced {
                        lines.push("```".into());
                    }
                    lines.push("Then this.".into());
                    expected.push(Block { file: file.clone(), search: search.clone(), replace: replace.clone() });
                }
                let answer = lines.join(if crlf { "\r\n" } else { "\n" });
                let pieces = split(&answer, &cuts);
                let (mut blocks, fin) = parse(pieces.iter().map(String::as_str));
                blocks.extend(fin.blocks);
                prop_assert_eq!(blocks, expected);
                prop_assert_eq!(fin.unterminated, None);
                prop_assert!(fin.malformed.is_empty());
            }
        }
    }
}
