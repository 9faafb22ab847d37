//! The messages sent for an edit: a system prompt asking for SEARCH/REPLACE blocks, the
//! context files, the earlier turns of a follow-up, and the selection with a bounded window of
//! context around it (never the whole of a large file).
//!
//! Order matters for prompt caching: what stays the same from one request to the next (the
//! system prompt with the project's instructions, then the context files) comes first; what changes (history, window,
//! selection, diagnostics, instruction) after.

use crate::edit::instructions::{self, InstructionFile};
use crate::edit::request::{Diagnostic, Turn};
use crate::openrouter::Message;

const SYSTEM: &str = "You are an expert programmer editing files inside the user's editor.\n\
Answer ONLY with one or more SEARCH/REPLACE blocks, in this exact format:\n\
\n\
path/of/the/file\n\
<<<<<<< SEARCH\n\
lines copied exactly from the file, including indentation\n\
=======\n\
the lines that replace them\n\
>>>>>>> REPLACE\n\
\n\
Rules:\n\
- On the line before each block, write the path of the file it changes, relative to the project root, exactly as the files are named to you.\n\
- Change only the files you are told you may change.\n\
- Each SEARCH section must copy contiguous existing lines character for character, with enough lines to be unique.\n\
- Keep blocks small: one block per separate change; do not repeat unchanged regions.\n\
- Change only what the instruction asks for, inside the selected lines unless it clearly requires more.\n\
- To delete lines, leave the replacement empty. Never use an empty SEARCH section, except to create a new file inside the project: then the replacement is the new file's whole text.\n\
- No explanations, no prose outside the blocks.";

/// A context file as the model sees it.
pub struct ContextText<'a> {
    /// Relative to the project root.
    pub path: &'a str,
    pub lines: &'a [String],
}

/// What the prompt is built from.
pub struct PromptInput<'a> {
    pub file: &'a str,
    pub filetype: &'a str,
    pub instruction: &'a str,
    /// The context window: buffer lines `win_start ..` (0-based).
    pub window: &'a [String],
    pub win_start: usize,
    /// The selection, 0-based `[start, end)` in buffer rows, inside the window.
    pub sel_start: usize,
    pub sel_end: usize,
    pub total_lines: usize,
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
    for (i, turn) in input.history.iter().enumerate() {
        let content = if i == 0 {
            format!(
                "Instruction (about the files as shown in my last message): {}\n",
                turn.instruction
            )
        } else {
            format!("Instruction: {}\n", turn.instruction)
        };
        messages.push(Message::user(content));
        // The last earlier answer ends the conversation so far: a follow-up of this follow-up
        // re-reads all of it from the cache.
        let answer = Message::assistant(turn.answer.clone());
        messages.push(if i + 1 == input.history.len() {
            answer.cached()
        } else {
            answer
        });
    }
    messages.push(Message::user(current_message(input)));
    messages
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
    let ws = input.win_start;
    let we = ws + input.window.len();
    let fence = fence_for(input.window);
    let mut user =
        String::with_capacity(input.window.iter().map(|l| l.len() + 1).sum::<usize>() + 512);
    user.push_str(&format!(
        "Files you may change: {} (the current file){}. You may also create new files inside the project.\n",
        input.file,
        input
            .context
            .iter()
            .map(|c| format!(", {}", c.path))
            .collect::<String>()
    ));
    user.push_str(&format!(
        "File: {} (filetype: {})\n",
        input.file,
        if input.filetype.is_empty() {
            "unknown"
        } else {
            input.filetype
        }
    ));
    if ws > 0 || we < input.total_lines {
        user.push_str(&format!(
            "Shown: lines {}-{} of {} (the rest of the file is not shown).\n",
            ws + 1,
            we,
            input.total_lines
        ));
    }
    user.push('\n');
    push_fenced(&mut user, &fence, input.filetype, input.window);
    user.push('\n');
    let whole = input.sel_start == 0 && input.sel_end >= input.total_lines;
    if !whole {
        user.push_str(&format!(
            "Selected lines {}-{}:\n",
            input.sel_start + 1,
            input.sel_end
        ));
        let selected = &input.window[input.sel_start - ws..input.sel_end - ws];
        push_fenced(&mut user, &fence, "", selected);
        user.push('\n');
    }
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
            file: "src/a.rs",
            filetype: "rust",
            instruction: "rename",
            window: &window,
            win_start: 99,
            sel_start: 102,
            sel_end: 104,
            total_lines: 20_000,
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
            file: "src/a.rs",
            filetype: "rust",
            instruction: "keep the old name",
            window: &window,
            win_start: 0,
            sel_start: 0,
            sel_end: 1,
            total_lines: 1,
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
