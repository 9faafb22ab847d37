//! Reading the judge's answer: `{"verdicts": [{"hunk": 1, "verdict": "ok", "reason": "…"}]}`,
//! as is, inside a ``` fence, or with prose around it. A hunk whose verdict cannot be read —
//! missing, given twice, an unknown word, the wrong shape — gets [`Judgement::None`] ("no
//! verdict") rather than a guess; entries for hunks that were not asked about are ignored.

use crate::protocol::Judgement;
use serde_json::Value;

/// The most characters of a reason kept: a reason is shown in full (wrapped under its hunk),
/// so this only bounds a runaway answer; the judge is asked for 20 words.
const REASON_CHARS: usize = 2000;

/// How many `{` positions of a prose answer are tried as the start of the JSON at most: the
/// answer is bounded, but trying every brace of a long one would be quadratic.
const MAX_STARTS: usize = 256;

/// The verdict of one hunk number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub verdict: Judgement,
    /// One line; for [`Judgement::None`], why there is none.
    pub reason: String,
}

/// The verdicts of the hunks numbered `numbers`, in that order, and why the answer as a whole
/// could not be read (then every verdict is `None`).
pub fn read(answer: &str, numbers: &[usize]) -> (Vec<Read>, Option<String>) {
    let count = numbers.len();
    let Some(list) = find_verdicts(answer) else {
        let why = if answer.trim().is_empty() {
            "the judge's answer was empty"
        } else {
            "the judge's answer held no {\"verdicts\": [...]} JSON"
        };
        let none = Read {
            verdict: Judgement::None,
            reason: format!("no verdict: {why}"),
        };
        return (vec![none; count], Some(why.to_string()));
    };
    // Per hunk number: the entries found for it.
    let mut found: Vec<Vec<Option<Read>>> = vec![Vec::new(); count];
    for entry in list {
        let Some(n) = entry.get("hunk").and_then(hunk_number) else {
            continue;
        };
        let Some(at) = numbers.iter().position(|&k| k == n) else {
            continue; // a hunk that was not asked about
        };
        found[at].push(entry_verdict(&entry));
    }
    let reads = found
        .into_iter()
        .map(|entries| match entries.as_slice() {
            [] => none("the judge gave none for this hunk"),
            [Some(r)] => r.clone(),
            [None] => none("the judge's verdict for this hunk could not be read"),
            _ => none("the judge gave this hunk more than one verdict"),
        })
        .collect();
    (reads, None)
}

fn none(why: &str) -> Read {
    Read {
        verdict: Judgement::None,
        reason: format!("no verdict: {why}"),
    }
}

/// A hunk number: a whole JSON number, or a string of digits.
fn hunk_number(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// One entry's verdict and reason; `None` when the entry has the wrong shape.
fn entry_verdict(entry: &Value) -> Option<Read> {
    let word = entry.get("verdict")?.as_str()?.trim().to_ascii_lowercase();
    let verdict = match word.as_str() {
        "ok" => Judgement::Ok,
        "risky" => Judgement::Risky,
        "wrong" => Judgement::Wrong,
        _ => return None,
    };
    let reason = match entry.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => one_line(s),
        Some(_) => return None,
    };
    Some(Read { verdict, reason })
}

/// `text` on one line: control characters and runs of white space become one space, at most
/// [`REASON_CHARS`] characters.
fn one_line(text: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() <= REASON_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The `verdicts` array of the first JSON object holding one: the whole answer, else each
/// fenced block, else an object starting at some `{` of the prose.
fn find_verdicts(answer: &str) -> Option<Vec<Value>> {
    let of = |v: Value| -> Option<Vec<Value>> {
        match v {
            Value::Object(mut m) => match m.remove("verdicts") {
                Some(Value::Array(a)) => Some(a),
                _ => None,
            },
            // A bare array of entries: the list itself.
            Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => Some(a),
            _ => None,
        }
    };
    let trimmed = answer.trim().trim_start_matches('\u{feff}');
    if let Some(list) = serde_json::from_str(trimmed).ok().and_then(of) {
        return Some(list);
    }
    for body in fenced(trimmed) {
        if let Some(list) = serde_json::from_str(body.trim()).ok().and_then(of) {
            return Some(list);
        }
    }
    // Prose around it: parse one value from each `{` on, ignoring what follows it.
    let mut tried = 0;
    for (i, _) in trimmed.match_indices('{') {
        tried += 1;
        if tried > MAX_STARTS {
            break;
        }
        let mut values = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            if let Some(list) = of(v) {
                return Some(list);
            }
        }
    }
    None
}

/// The bodies of the ``` (or longer, or ~~~) fenced blocks of `text`, in order.
fn fenced(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let t = line.trim();
        let run: String = t.chars().take_while(|&c| c == '`' || c == '~').collect();
        let is_fence =
            run.len() >= 3 && run.chars().all(|c| c == run.chars().next().unwrap_or('`'));
        match &open {
            None if is_fence => open = Some((run, pos)),
            Some((fence, body)) if is_fence && t == fence.as_str() => {
                out.push(&text[*body..start]);
                open = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Judgement::*;

    fn verdicts(answer: &str, count: usize) -> Vec<(Judgement, String)> {
        read(answer, &(1..=count).collect::<Vec<_>>())
            .0
            .into_iter()
            .map(|r| (r.verdict, r.reason))
            .collect()
    }

    const CLEAN: &str = r#"{"verdicts":[{"hunk":1,"verdict":"ok","reason":"does it"},{"hunk":2,"verdict":"risky","reason":"changes the API"},{"hunk":3,"verdict":"wrong","reason":"off by one"}]}"#;

    fn three() -> Vec<(Judgement, String)> {
        vec![
            (Ok, "does it".into()),
            (Risky, "changes the API".into()),
            (Wrong, "off by one".into()),
        ]
    }

    #[test]
    fn clean_json() {
        assert_eq!(verdicts(CLEAN, 3), three());
        assert_eq!(read(CLEAN, &[1, 2, 3]).1, Option::None);
    }

    #[test]
    fn fenced_json() {
        let a = format!("Here are my verdicts:\n\n```json\n{CLEAN}\n```\n");
        assert_eq!(verdicts(&a, 3), three());
        let a = format!("````\n{CLEAN}\n````");
        assert_eq!(verdicts(&a, 3), three());
    }

    #[test]
    fn prose_around_the_json() {
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(CLEAN).unwrap()).unwrap();
        let a = format!("Sure! I looked at {{each}} hunk.\n{pretty}\nHope this helps {{really}}.");
        assert_eq!(verdicts(&a, 3), three());
    }

    #[test]
    fn garbage_gives_no_verdict_for_every_hunk() {
        for a in [
            "",
            "I think they are all fine.",
            "{\"verdicts\": \"ok\"}",
            "{\"verdicts\": [1, 2",
            "[1, 2, 3]",
        ] {
            let (reads, why) = read(a, &[1, 2]);
            assert_eq!(reads.len(), 2);
            assert!(
                reads
                    .iter()
                    .all(|r| r.verdict == None && r.reason.starts_with("no verdict")),
                "{a:?}: {reads:?}"
            );
            assert!(why.is_some(), "{a:?}");
        }
    }

    #[test]
    fn a_hunk_that_cannot_be_read_gets_no_verdict_the_others_keep_theirs() {
        let a = r#"{"verdicts":[
            {"hunk":1,"verdict":"OK","reason":"fine\n  really"},
            {"hunk":2,"verdict":"maybe","reason":"unknown word"},
            {"hunk":3,"verdict":"ok","reason":"first"},
            {"hunk":3,"verdict":"wrong","reason":"second"},
            {"hunk":4,"verdict":"wrong","reason":7},
            {"hunk":"6","verdict":"risky"},
            {"verdict":"ok","reason":"no number"},
            {"hunk":9,"verdict":"ok","reason":"not asked about"},
            {"hunk":0,"verdict":"ok","reason":"not asked about"}
        ]}"#;
        let v = verdicts(a, 7);
        assert_eq!(v[0], (Ok, "fine really".into()));
        assert_eq!(v[1].0, None);
        assert!(v[1].1.contains("could not be read"), "{:?}", v[1]);
        assert_eq!(v[2].0, None);
        assert!(v[2].1.contains("more than one"), "{:?}", v[2]);
        assert_eq!(v[3].0, None, "a reason of the wrong type");
        assert_eq!(v[4].0, None);
        assert!(v[4].1.contains("gave none"), "{:?}", v[4]);
        assert_eq!(
            v[5],
            (Risky, String::new()),
            "a number as a string; no reason"
        );
        assert_eq!(v[6].0, None);
        assert_eq!(v.len(), 7, "extra hunks ignored");
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        let long = "word ".repeat(500);
        let a =
            format!(r#"{{"verdicts":[{{"hunk":1,"verdict":"ok","reason":"{long}\u001b[2J"}}]}}"#);
        let r = &verdicts(&a, 1)[0].1;
        assert!(r.chars().count() <= REASON_CHARS && r.ends_with('…'), "{r}");
        assert!(!r.contains('\x1b') && !r.contains('\n'));
    }

    #[test]
    fn a_bare_list_of_entries_is_read_too() {
        let a = r#"[{"hunk":1,"verdict":"wrong","reason":"no"}]"#;
        assert_eq!(verdicts(a, 1), vec![(Wrong, "no".into())]);
    }
}
