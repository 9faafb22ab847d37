//! The judge's messages: the instruction, then every hunk numbered from 1 by path, then line,
//! each as a small unified diff (context, original lines, proposed lines); and the JSON schema
//! of the answer, sent as `response_format` to models that take it.

use crate::edit::instructions::{self, InstructionFile};
use crate::openrouter::catalogue::ModelInfo;
use crate::openrouter::Message;
use crate::review::request::ReviewHunk;

/// The name of the answer's schema in `response_format`.
pub const SCHEMA_NAME: &str = "hunk_verdicts";

const SYSTEM: &str = "You are a meticulous senior code reviewer acting as a judge. Another \
model proposed the numbered hunks below to carry out the user's instruction. For EACH hunk \
give a verdict:\n\
- \"ok\": correct, and does what the instruction asks;\n\
- \"risky\": probably right, but it may break something, changes behaviour beyond the \
instruction, or needs a careful look;\n\
- \"wrong\": incorrect, does not do what was asked, or breaks the code.\n\
Give a one-line reason (at most 20 words) for each.\n\
Answer ONLY with JSON of this shape, one entry per hunk, numbered as given, no prose:\n\
{\"verdicts\": [{\"hunk\": 1, \"verdict\": \"ok\", \"reason\": \"...\"}]}";

/// The hunks in the judge's order: `(number, index in the request)`. The numbers are the
/// hunks' own (`number`, what their labels show) when every hunk has a distinct one, in
/// number order; else from 1 by path, then line (a stable sort: hunks the shim sent in order
/// keep it).
pub fn numbering(hunks: &[ReviewHunk]) -> Vec<(usize, usize)> {
    let mut own: Vec<(usize, usize)> = hunks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.number.filter(|&n| n > 0).map(|n| (n, i)))
        .collect();
    own.sort();
    own.dedup_by_key(|p| p.0);
    if own.len() == hunks.len() {
        return own;
    }
    let mut order: Vec<usize> = (0..hunks.len()).collect();
    order.sort_by(|&a, &b| {
        (hunks[a].path.as_str(), hunks[a].line).cmp(&(hunks[b].path.as_str(), hunks[b].line))
    });
    order
        .into_iter()
        .enumerate()
        .map(|(n, i)| (n + 1, i))
        .collect()
}

/// The messages for the judge; the project's instruction files end its system message.
pub fn build(
    instruction: &str,
    filetype: &str,
    hunks: &[ReviewHunk],
    project_instructions: &[InstructionFile],
) -> Vec<Message> {
    let all: Vec<&String> = hunks
        .iter()
        .flat_map(|h| h.before.iter().chain(&h.old).chain(&h.new).chain(&h.after))
        .collect();
    let fence = crate::edit::prompt::fence_for(&all);
    let mut user = String::new();
    user.push_str("Instruction given to the model:\n");
    user.push_str(instruction.trim());
    user.push_str("\n\n");
    if !filetype.is_empty() {
        user.push_str(&format!("Filetype of the buffer: {filetype}\n"));
    }
    user.push_str(&format!(
        "Its proposal: {} hunk{} (lines starting with '-' are the original lines, '+' the \
         proposed ones, ' ' unchanged context).\n",
        hunks.len(),
        if hunks.len() == 1 { "" } else { "s" }
    ));
    for (n, i) in numbering(hunks) {
        let h = &hunks[i];
        let last = h.line + h.old.len().max(1) - 1;
        user.push_str(&format!("\nHunk {n}: {}, ", h.path));
        if h.old.is_empty() {
            user.push_str(&format!("new lines at line {}", h.line));
        } else if last == h.line {
            user.push_str(&format!("line {}", h.line));
        } else {
            user.push_str(&format!("lines {}-{last}", h.line));
        }
        user.push_str(&format!("\n{fence}diff\n"));
        for (mark, lines) in [
            (' ', &h.before),
            ('-', &h.old),
            ('+', &h.new),
            (' ', &h.after),
        ] {
            for l in lines {
                user.push(mark);
                user.push_str(l);
                user.push('\n');
            }
        }
        user.push_str(&fence);
        user.push('\n');
    }
    let numbers: Vec<usize> = numbering(hunks).iter().map(|p| p.0).collect();
    if numbers.iter().enumerate().all(|(i, &n)| n == i + 1) {
        user.push_str(&format!(
            "\nGive exactly one verdict for each of hunks 1 to {}.\n",
            hunks.len()
        ));
    } else {
        let list: Vec<String> = numbers.iter().map(usize::to_string).collect();
        user.push_str(&format!(
            "\nGive exactly one verdict for each of hunks {}.\n",
            list.join(", ")
        ));
    }
    // The judge's instructions (and the project's) are the same for every review of the
    // project: a cacheable prefix.
    let system = instructions::system_with(SYSTEM, project_instructions);
    vec![Message::system(system).cached(), Message::user(user)]
}

/// Whether to ask for the answer through `response_format`: only when the judge model's
/// catalogue entry lists `structured_outputs` or `response_format`. A model the catalogue does
/// not list (or no catalogue at all) gets a plain request: an endpoint that does not know the
/// field may reject it, and the parser reads JSON in prose or a fence anyway.
pub fn wants_schema(model: Option<&ModelInfo>) -> bool {
    model.is_some_and(ModelInfo::structured_outputs)
}

/// The `response_format` asking for `{"verdicts": [{"hunk", "verdict", "reason"}]}`.
pub fn response_format() -> serde_json::Value {
    serde_json::json!({
        "type": "json_schema",
        "json_schema": {
            "name": SCHEMA_NAME,
            "strict": true,
            "schema": {
                "type": "object",
                "properties": {
                    "verdicts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "hunk": { "type": "integer", "description": "the hunk's number, from 1" },
                                "verdict": { "type": "string", "enum": ["ok", "risky", "wrong"] },
                                "reason": { "type": "string", "description": "one line" }
                            },
                            "required": ["hunk", "verdict", "reason"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["verdicts"],
                "additionalProperties": false
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(path: &str, line: usize, old: &[&str], new: &[&str]) -> ReviewHunk {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ReviewHunk {
            path: path.into(),
            line,
            old: v(old),
            new: v(new),
            before: vec!["ctx above".into()],
            after: vec![],
            number: None,
        }
    }

    #[test]
    fn hunks_keep_the_numbers_their_labels_show() {
        let numbered = |path, line, k| ReviewHunk {
            number: Some(k),
            ..hunk(path, line, &["x"], &["y"])
        };
        let hunks = [
            numbered("src/b.lua", 3, 1),
            numbered("src/a.lua", 40, 4),
            numbered("src/a.lua", 7, 2),
        ];
        assert_eq!(numbering(&hunks), vec![(1, 0), (2, 2), (4, 1)]);
        let u = &build("x", "", &hunks, &[])[1].content;
        assert!(u.contains("Hunk 4: src/a.lua, line 40"), "{u}");
        assert!(
            u.ends_with("Give exactly one verdict for each of hunks 1, 2, 4.\n"),
            "{u}"
        );
        // A duplicated or missing number: numbered by path, then line, as before.
        let mixed = [numbered("b", 1, 1), numbered("a", 1, 1)];
        assert_eq!(numbering(&mixed), vec![(1, 1), (2, 0)]);
    }

    #[test]
    fn hunks_are_numbered_by_path_then_line() {
        let hunks = [
            hunk("src/b.lua", 3, &["b3"], &["B3"]),
            hunk("src/a.lua", 40, &["a40"], &["A40"]),
            hunk("src/a.lua", 7, &["a7", "a8"], &["A7"]),
            hunk("src/a.lua", 7, &[], &["same line, later"]),
        ];
        assert_eq!(numbering(&hunks), vec![(1, 2), (2, 3), (3, 1), (4, 0)]);
        let msgs = build("  rename things ", "lua", &hunks, &[]);
        let u = &msgs[1].content;
        assert!(
            u.starts_with("Instruction given to the model:\nrename things\n"),
            "{u}"
        );
        let at = |s: &str| u.find(s).unwrap_or_else(|| panic!("{s:?} not in {u}"));
        assert!(at("Hunk 1: src/a.lua, lines 7-8") < at("Hunk 2: src/a.lua, new lines at line 7"));
        assert!(at("Hunk 2:") < at("Hunk 3: src/a.lua, line 40"));
        assert!(at("Hunk 3:") < at("Hunk 4: src/b.lua, line 3"));
        assert!(
            u.contains("```diff\n ctx above\n-a7\n-a8\n+A7\n```\n"),
            "{u}"
        );
        assert!(u.ends_with("Give exactly one verdict for each of hunks 1 to 4.\n"));
        assert!(msgs[0].content.contains("\"verdicts\""));
    }

    #[test]
    fn a_fence_in_the_code_gets_a_longer_fence() {
        let msgs = build(
            "x",
            "",
            &[hunk("README.md", 1, &["```lua"], &["````"])],
            &[],
        );
        assert!(
            msgs[1]
                .content
                .contains("\n`````diff\n ctx above\n-```lua\n+````\n`````\n"),
            "{}",
            msgs[1].content
        );
    }

    #[test]
    fn the_schema_goes_only_to_models_that_list_structured_outputs() {
        let model = |params: &[&str]| ModelInfo {
            id: "google/gemini-2.5-flash".into(),
            name: "g".into(),
            context_length: None,
            price: None,
            list_price: None,
            max_completion_tokens: None,
            cache_price: None,
            tiers: Vec::new(),
            expires: None,
            supported_parameters: params.iter().map(|s| s.to_string()).collect(),
        };
        assert!(wants_schema(Some(&model(&[
            "max_tokens",
            "structured_outputs"
        ]))));
        assert!(wants_schema(Some(&model(&["response_format"]))));
        assert!(!wants_schema(Some(&model(&["max_tokens", "tools"]))));
        assert!(
            !wants_schema(None),
            "not in the catalogue (a plain endpoint): plain request"
        );
        let f = response_format();
        assert_eq!(f["type"], "json_schema");
        assert_eq!(f["json_schema"]["name"], SCHEMA_NAME);
        assert_eq!(f["json_schema"]["strict"], true);
        let item = &f["json_schema"]["schema"]["properties"]["verdicts"]["items"];
        assert_eq!(
            item["properties"]["verdict"]["enum"],
            serde_json::json!(["ok", "risky", "wrong"])
        );
    }
}
