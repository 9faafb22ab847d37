//! The messages sent for an ask: a system prompt of its own (answer in Markdown; any change as
//! SEARCH/REPLACE blocks, the edit's format, so `:LlmApply` can propose them), then the edit's
//! stable part (the context files and the project's instructions: [`edit_prompt::stable_for`]),
//! the earlier turns of the conversation, and the code asked about with the question.

use crate::edit::prompt::{self as edit_prompt, Code, ContextText};
use crate::edit::request::Turn;
use crate::openrouter::Message;

const SYSTEM: &str = concat!(
    "You are an expert programmer answering questions about code inside the user's editor.\n\
Answer in Markdown, concisely. Quote code in fenced blocks.\n\
If you propose a change to a file, write it as one or more SEARCH/REPLACE blocks in this exact format, so the user can apply it:\n",
    edit_prompt::block_format!(),
    "On the line before each block write the file's path relative to the project root, exactly as the files are named to you. Each SEARCH section copies contiguous existing lines character for character, with enough lines to be unique. To create a new file, leave SEARCH empty. Write no block when no change is asked for."
);

/// What an ask's prompt is built from.
pub struct AskInput<'a> {
    /// The code asked about: its window and the range.
    pub code: Code<'a>,
    pub question: &'a str,
    pub context: &'a [ContextText<'a>],
    /// The project's instruction files (`instructions`), in the stable part.
    pub instructions: &'a [crate::edit::instructions::InstructionFile],
    /// The conversation so far, oldest first.
    pub history: &'a [Turn],
}

pub fn build(input: &AskInput) -> Vec<Message> {
    let mut messages = edit_prompt::stable_for(SYSTEM, input.instructions, input.context);
    // The code goes with the first question (where the conversation started) and again with
    // the current one: the buffer may have changed since.
    edit_prompt::push_turns(&mut messages, input.history, |_, turn| {
        format!("Question: {}\n", turn.instruction)
    });
    messages.push(Message::user(current(input)));
    messages
}

/// The code asked about (its window, the range) and the question.
fn current(input: &AskInput) -> String {
    let mut user =
        String::with_capacity(input.code.window.iter().map(|l| l.len() + 1).sum::<usize>() + 256);
    edit_prompt::push_code(&mut user, &input.code, "The question is about lines");
    user.push_str("Question: ");
    user.push_str(input.question);
    user.push('\n');
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_context_history_then_the_code_and_question() {
        let window: Vec<String> = vec!["fn a() {}".into(), "fn b() {}".into()];
        let other = vec!["x".to_string()];
        let context = [ContextText {
            path: "src/c.rs",
            lines: &other,
        }];
        let history = [Turn {
            instruction: "what is a?".into(),
            answer: "A function.".into(),
        }];
        let msgs = build(&AskInput {
            code: Code {
                file: "src/a.rs",
                filetype: "rust",
                window: &window,
                win_start: 0,
                sel_start: 1,
                sel_end: 2,
                total_lines: 2,
            },
            question: "and b?",
            context: &context,
            instructions: &[],
            history: &history,
        });
        let roles: Vec<&str> = msgs.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["system", "user", "user", "assistant", "user"]);
        assert!(msgs[0].content.contains("SEARCH/REPLACE"));
        assert!(msgs[0].content.contains("Markdown"));
        assert!(msgs[1].content.contains("src/c.rs"));
        assert_eq!(msgs[2].content, "Question: what is a?\n");
        assert_eq!(msgs[3].content, "A function.");
        assert!(msgs[3].cache);
        let last = &msgs[4].content;
        assert!(last.contains("lines 2-2:\n```\nfn b() {}\n```"), "{last}");
        assert!(last.ends_with("Question: and b?\n"));
    }
}
