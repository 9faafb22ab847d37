//! The messages sent for an edit: a system prompt asking for SEARCH/REPLACE blocks, the
//! context files, the earlier turns of a follow-up, and the selection with a bounded window of
//! context around it (never the whole of a large file).
//!
//! Order matters for prompt caching: what stays the same from one request to the next (the
//! system prompt with the project's instructions, then the context files) comes first; what changes (history, window,
//! selection, diagnostics, instruction) after.

use crate::edit::instructions::{self, InstructionFile};
use crate::edit::request::{Diagnostic, EditRequest, Turn};
use crate::openrouter::Message;

/// The SEARCH/REPLACE block as the system prompts show it (the edit's, the ask's), a blank
/// line on each side: the one format the block parser reads.
macro_rules! block_format {
    () => {
        "\n\
path/of/the/file\n\
<<<<<<< SEARCH\n\
lines copied exactly from the file, including indentation\n\
=======\n\
the lines that replace them\n\
>>>>>>> REPLACE\n\
\n"
    };
}
pub(crate) use block_format;

const SYSTEM: &str = concat!(
    "You are an expert programmer editing files inside the user's editor.\n\
Answer ONLY with one or more SEARCH/REPLACE blocks, in this exact format:\n",
    block_format!(),
    "Rules:\n\
- On the line before each block, write the path of the file it changes, relative to the project root, exactly as the files are named to you.\n\
- Change only the files you are told you may change.\n\
- Each SEARCH section must copy contiguous existing lines character for character, with enough lines to be unique.\n\
- Keep blocks small: one block per separate change; do not repeat unchanged regions.\n\
- Change only what the instruction asks for, inside the selected lines unless it clearly requires more.\n\
- To delete lines, leave the replacement empty. Never use an empty SEARCH section, except to create a new file inside the project: then the replacement is the new file's whole text.\n\
- No explanations, no prose outside the blocks."
);

/// A context file as the model sees it.
pub struct ContextText<'a> {
    /// Relative to the project root.
    pub path: &'a str,
    pub lines: &'a [String],
}

/// The code a request is about: the current file's window and the selection inside it.
#[derive(Clone, Copy)]
pub struct Code<'a> {
    pub file: &'a str,
    pub filetype: &'a str,
    /// The context window: buffer lines `win_start ..` (0-based).
    pub window: &'a [String],
    pub win_start: usize,
    /// The selection, 0-based `[start, end)` in buffer rows, inside the window.
    pub sel_start: usize,
    pub sel_end: usize,
    pub total_lines: usize,
}

impl<'a> Code<'a> {
    /// The code of an edit's request (or an ask's, which carries one).
    pub fn of(req: &'a EditRequest) -> Self {
        Code {
            file: &req.file,
            filetype: &req.filetype,
            window: &req.lines,
            win_start: req.win_start,
            sel_start: req.sel_start,
            sel_end: req.sel_end,
            total_lines: req.total_lines,
        }
    }
}

impl<'a> ContextText<'a> {
    /// The files sent beside the current one (the first of `files`), as context.
    pub fn beside(files: &'a [crate::edit::files::EditFile]) -> Vec<ContextText<'a>> {
        files[1..]
            .iter()
            .map(|f| ContextText {
                path: &f.path,
                lines: &f.lines,
            })
            .collect()
    }
}

/// What the prompt is built from.
pub struct PromptInput<'a> {
    pub code: Code<'a>,
    pub instruction: &'a str,
    /// The project's instruction files (AGENTS.md…), in the system message.
    pub instructions: &'a [InstructionFile],
    /// The other files the model sees and may change, in the request's order.
    pub context: &'a [ContextText<'a>],
    /// A follow-up's earlier turns, oldest first.
    pub history: &'a [Turn],
    /// Diagnostics inside the selection.
    pub diagnostics: &'a [Diagnostic],
}

pub fn build(input: &PromptInput) -> Vec<Message> {
    let mut messages = stable(input.instructions, input.context);
    // The stable part (system prompt, context files) ends here: what follows changes from one
    // request to the next.
    push_turns(&mut messages, input.history, |i, turn| {
        if i == 0 {
            format!(
                "Instruction (about the files as shown in my last message): {}\n",
                turn.instruction
            )
        } else {
            format!("Instruction: {}\n", turn.instruction)
        }
    });
    messages.push(Message::user(current_message(input)));
    messages
}

/// The earlier turns, oldest first: each one's user message (`said`: from its index and the
/// turn) and the model's answer. The last answer ends the conversation so far: the next turn
/// re-reads all of it from the cache.
pub(crate) fn push_turns(
    messages: &mut Vec<Message>,
    history: &[Turn],
    said: impl Fn(usize, &Turn) -> String,
) {
    for (i, turn) in history.iter().enumerate() {
        messages.push(Message::user(said(i, turn)));
        let answer = Message::assistant(turn.answer.clone());
        messages.push(if i + 1 == history.len() {
            answer.cached()
        } else {
            answer
        });
    }
}

/// The part of the messages that stays the same from one request to the next: the system
/// prompt with the project's instructions, then the context files (when there are any).
pub fn stable(instructions: &[InstructionFile], context: &[ContextText]) -> Vec<Message> {
    stable_for(SYSTEM, instructions, context)
}

/// [`stable`] under another system prompt (an ask's): the same instructions and context part,
/// so every kind of request sends the project's files the same way.
pub fn stable_for(
    system: &str,
    instructions: &[InstructionFile],
    context: &[ContextText],
) -> Vec<Message> {
    // The system prompt and the instructions are the same for every request of a kind in the
    // project, the context files for every request of this session: each ends a cacheable
    // prefix.
    let system = instructions::system_with(system, instructions);
    let mut messages = vec![Message::system(system).cached()];
    if !context.is_empty() {
        messages.push(Message::user(context_message(context)).cached());
    }
    messages
}

/// The context files, each under its path, in a fence.
fn context_message(context: &[ContextText]) -> String {
    let size: usize = context
        .iter()
        .map(|c| c.path.len() + c.lines.iter().map(|l| l.len() + 1).sum::<usize>() + 16)
        .sum();
    let mut out = String::with_capacity(size + 128);
    out.push_str("Context files of the project (you may change them too):\n");
    for c in context {
        out.push_str(&format!("\n{}\n", c.path));
        push_fenced(&mut out, &fence_for(c.lines), "", c.lines);
    }
    out
}

/// `lines` in `fence` (`info` after the opening one, e.g. a filetype), each line and the
/// closing fence ended by a newline.
pub(crate) fn push_fenced(out: &mut String, fence: &str, info: &str, lines: &[String]) {
    out.push_str(fence);
    out.push_str(info);
    out.push('\n');
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(fence);
    out.push('\n');
}

/// The current file's window, the selection, its diagnostics and the instruction.
fn current_message(input: &PromptInput) -> String {
    let code = &input.code;
    let mut user =
        String::with_capacity(code.window.iter().map(|l| l.len() + 1).sum::<usize>() + 512);
    user.push_str(&format!(
        "Files you may change: {} (the current file){}. You may also create new files inside the project.\n",
        code.file,
        input
            .context
            .iter()
            .map(|c| format!(", {}", c.path))
            .collect::<String>()
    ));
    push_code(&mut user, code, "Selected lines");
    if !input.diagnostics.is_empty() {
        user.push_str("Diagnostics in the selected lines:\n");
        for d in input.diagnostics {
            let source = d
                .source
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            // One line each: a multi-line message is joined.
            let message = d.message.lines().collect::<Vec<_>>().join(" ");
            user.push_str(&format!(
                "- line {}: {}: {message}{source}\n",
                d.row + 1,
                d.severity
            ));
        }
        user.push('\n');
    }
    if !input.history.is_empty() {
        user.push_str("Follow-up: the blocks you proposed above were NOT applied; the files are still as shown. Answer with a complete new set of blocks, replacing your earlier proposal, that also follows this instruction.\n");
    }
    user.push_str("Instruction: ");
    user.push_str(input.instruction);
    user.push('\n');
    user
}

/// The code as the model sees it: the file and its filetype, which lines the window shows
/// (when not all of them), the window in a fence, then, unless the whole file is selected, the
/// selected lines again under `selected` ("Selected lines 3-4:").
pub(crate) fn push_code(out: &mut String, code: &Code, selected: &str) {
    let ws = code.win_start;
    let we = ws + code.window.len();
    let fence = fence_for(code.window);
    let filetype = if code.filetype.is_empty() {
        "unknown"
    } else {
        code.filetype
    };
    out.push_str(&format!("File: {} (filetype: {filetype})\n", code.file));
    if ws > 0 || we < code.total_lines {
        out.push_str(&format!(
            "Shown: lines {}-{} of {} (the rest of the file is not shown).\n",
            ws + 1,
            we,
            code.total_lines
        ));
    }
    out.push('\n');
    push_fenced(out, &fence, code.filetype, code.window);
    out.push('\n');
    let whole = code.sel_start == 0 && code.sel_end >= code.total_lines;
    if !whole {
        out.push_str(&format!(
            "{selected} {}-{}:\n",
            code.sel_start + 1,
            code.sel_end
        ));
        let slice = &code.window[code.sel_start - ws..code.sel_end - ws];
        push_fenced(out, &fence, "", slice);
        out.push('\n');
    }
}

/// A fence longer than any backtick run at a line start in the content, so code holding
/// Markdown fences cannot close ours.
pub(crate) fn fence_for<S: AsRef<str>>(lines: &[S]) -> String {
    let longest = lines
        .iter()
        .map(|l| {
            l.as_ref()
                .trim_start()
                .chars()
                .take_while(|&c| c == '`')
                .count()
        })
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

pub use crate::runner::{prompt_bytes, prompt_token_bound};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_selection_are_shown() {
        let window: Vec<String> = (100..110).map(|i| format!("line {i}")).collect();
        let msgs = build(&PromptInput {
            code: Code {
                file: "src/a.rs",
                filetype: "rust",
                window: &window,
                win_start: 99,
                sel_start: 102,
                sel_end: 104,
                total_lines: 20_000,
            },
            instruction: "rename",
            instructions: &[],
            context: &[],
            history: &[],
            diagnostics: &[],
        });
        let u = &msgs[1].content;
        assert!(u.contains("lines 100-109 of 20000"));
        assert!(u.contains("Selected lines 103-104:\n```\nline 103\nline 104\n```"));
        assert!(u.ends_with("Instruction: rename\n"));
        assert!(prompt_token_bound(&msgs) > (u.len() + SYSTEM.len()) as u64);
        assert!(msgs[0].cache && !msgs[1].cache, "the stable part is marked");
    }

    #[test]
    fn context_comes_first_then_history_then_the_current_file() {
        let window = vec!["fn a() {}".to_string()];
        let other = vec!["fn b() {}".to_string()];
        let context = [ContextText {
            path: "src/b.rs",
            lines: &other,
        }];
        let history = [Turn {
            instruction: "rename a".into(),
            answer: "src/a.rs\n<<<<<<< SEARCH".into(),
        }];
        let diagnostics = [Diagnostic {
            row: 0,
            severity: "error".into(),
            message: "unused\nfunction".into(),
            source: Some("rustc".into()),
        }];
        let msgs = build(&PromptInput {
            code: Code {
                file: "src/a.rs",
                filetype: "rust",
                window: &window,
                win_start: 0,
                sel_start: 0,
                sel_end: 1,
                total_lines: 1,
            },
            instruction: "keep the old name",
            instructions: &[],
            context: &context,
            history: &history,
            diagnostics: &diagnostics,
        });
        let roles: Vec<&str> = msgs.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["system", "user", "user", "assistant", "user"]);
        let cached: Vec<bool> = msgs.iter().map(|m| m.cache).collect();
        assert_eq!(
            cached,
            [true, true, false, true, false],
            "the stable parts are marked"
        );
        assert!(msgs[1].content.contains("src/b.rs\n```\nfn b() {}\n```"));
        assert!(msgs[2].content.contains("rename a"));
        assert_eq!(msgs[3].content, "src/a.rs\n<<<<<<< SEARCH");
        let last = &msgs[4].content;
        assert!(last.starts_with("Files you may change: src/a.rs (the current file), src/b.rs."));
        assert!(
            last.contains("- line 1: error: unused function [rustc]"),
            "{last}"
        );
        assert!(last.contains("NOT applied"));
        assert!(last.ends_with("Instruction: keep the old name\n"));
    }

    #[test]
    fn fence_outgrows_content() {
        let window = vec!["```lua".to_string(), "x".into(), "```".into()];
        assert_eq!(fence_for(&window), "````");
    }
}
