//! What the end of an edit says to the user about the blocks it shows no hunk for, worded
//! here once: the failure when the answer gave no hunk, and the reasons sent with `done`. The
//! shim shows these texts as they are and words only what it alone knows (a hunk whose lines
//! changed while the answer streamed, a buffer it could not open).

use crate::protocol::{DoneWords, Problem};

/// What `done` carries for the shim to say (see [`DoneWords`]).
pub fn done(unmatched: &[String], problems: &[Problem]) -> DoneWords {
    DoneWords {
        not_shown: not_shown(unmatched, problems),
        none_placed: "no block could be placed".to_string(),
    }
}

/// Why blocks were not shown, one reason each: those that matched nowhere together first,
/// then each other block with its title.
pub fn not_shown(unmatched: &[String], problems: &[Problem]) -> Vec<String> {
    let mut reasons = Vec::new();
    if !unmatched.is_empty() {
        reasons.push(format!(
            "{} matched nowhere in the buffer",
            quote_list(unmatched)
        ));
    }
    reasons.extend(
        problems
            .iter()
            .map(|p| format!("\"{}\": {}", p.title, p.why)),
    );
    reasons
}

/// Why an answer gave no hunk at all. `cut`: it ended at max_tokens.
pub fn nothing_shown(unmatched: &[String], problems: &[Problem], cut: bool) -> String {
    if unmatched.is_empty() && problems.is_empty() {
        return if cut {
            "the answer was cut at max_tokens before its first SEARCH/REPLACE block ended: raise max_tokens (setup) or ask for a smaller change".to_string()
        } else {
            "the answer held no SEARCH/REPLACE block".to_string()
        };
    }
    if problems.is_empty() {
        return format!("no block matched the buffer: {}", quote_list(unmatched));
    }
    format!(
        "no block could be shown: {}",
        not_shown(unmatched, problems).join("; ")
    )
}

fn quote_list(titles: &[String]) -> String {
    titles
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(title: &str, why: &str) -> Problem {
        Problem {
            title: title.into(),
            why: why.into(),
        }
    }

    #[test]
    fn reasons_name_the_unmatched_together_then_each_problem() {
        let unmatched = vec!["a".to_string(), "b".to_string()];
        let problems = vec![problem("c", "it has no divider")];
        assert_eq!(
            not_shown(&unmatched, &problems),
            [
                "\"a\", \"b\" matched nowhere in the buffer",
                "\"c\": it has no divider"
            ]
        );
        assert!(not_shown(&[], &[]).is_empty());
        assert_eq!(done(&[], &[]).none_placed, "no block could be placed");
    }

    #[test]
    fn nothing_shown_says_why_there_is_no_hunk() {
        assert_eq!(
            nothing_shown(&[], &[], false),
            "the answer held no SEARCH/REPLACE block"
        );
        assert!(nothing_shown(&[], &[], true).contains("max_tokens"));
        assert_eq!(
            nothing_shown(&["a".into()], &[], false),
            "no block matched the buffer: \"a\""
        );
        assert_eq!(
            nothing_shown(&["a".into()], &[problem("c", "why")], false),
            "no block could be shown: \"a\" matched nowhere in the buffer; \"c\": why"
        );
    }
}
