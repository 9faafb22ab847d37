//! The messages sent for an edit: a system prompt asking for SEARCH/REPLACE blocks, and the
//! selection with a bounded window of context around it (never the whole of a large file).

use crate::openrouter::Message;

const SYSTEM: &str = "You are an expert programmer editing a file inside the user's editor.\n\
Answer ONLY with one or more SEARCH/REPLACE blocks, in this exact format:\n\
\n\
<<<<<<< SEARCH\n\
lines copied exactly from the file, including indentation\n\
=======\n\
the lines that replace them\n\
>>>>>>> REPLACE\n\
\n\
Rules:\n\
- Each SEARCH section must copy contiguous existing lines character for character, with enough lines to be unique.\n\
- Keep blocks small: one block per separate change; do not repeat unchanged regions.\n\
- Change only what the instruction asks for, inside the selected lines unless it clearly requires more.\n\
- To delete lines, leave the replacement empty. Never use an empty SEARCH section.\n\
- No explanations, no prose outside the blocks.";

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
}

pub fn build(input: &PromptInput) -> Vec<Message> {
    let ws = input.win_start;
    let we = ws + input.window.len();
    let fence = fence_for(input.window);
    let mut user =
        String::with_capacity(input.window.iter().map(|l| l.len() + 1).sum::<usize>() + 512);
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
    user.push_str(&format!("\n{fence}{}\n", input.filetype));
    for l in input.window {
        user.push_str(l);
        user.push('\n');
    }
    user.push_str(&fence);
    user.push_str("\n\n");
    let whole = input.sel_start == 0 && input.sel_end >= input.total_lines;
    if !whole {
        user.push_str(&format!(
            "Selected lines {}-{}:\n{fence}\n",
            input.sel_start + 1,
            input.sel_end
        ));
        for l in &input.window[input.sel_start - ws..input.sel_end - ws] {
            user.push_str(l);
            user.push('\n');
        }
        user.push_str(&fence);
        user.push_str("\n\n");
    }
    user.push_str("Instruction: ");
    user.push_str(input.instruction);
    user.push('\n');
    // The system prompt is the same for every edit: the start of a cacheable prefix.
    vec![Message::system(SYSTEM).cached(), Message::user(user)]
}

/// A fence longer than any backtick run at a line start in the content, so code holding
/// Markdown fences cannot close ours.
fn fence_for(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .map(|l| l.trim_start().chars().take_while(|&c| c == '`').count())
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// An upper bound on the prompt's tokens that holds for any tokenizer: no tokenizer emits more
/// tokens than the text has UTF-8 bytes, plus a small per-message overhead for the chat template.
pub fn prompt_token_bound(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| m.content.len() as u64 + 16)
        .sum::<u64>()
        + 16
}

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
        });
        let u = &msgs[1].content;
        assert!(u.contains("lines 100-109 of 20000"));
        assert!(u.contains("Selected lines 103-104:\n```\nline 103\nline 104\n```"));
        assert!(u.ends_with("Instruction: rename\n"));
        assert!(prompt_token_bound(&msgs) > (u.len() + SYSTEM.len()) as u64);
        assert!(msgs[0].cache && !msgs[1].cache, "the stable part is marked");
    }

    #[test]
    fn fence_outgrows_content() {
        let window = vec!["```lua".to_string(), "x".into(), "```".into()];
        assert_eq!(fence_for(&window), "````");
    }
}
