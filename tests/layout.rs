//! The crate's shape: no top-level module of `src/` imports a module that imports it back,
//! however far round (`budget` → `settings` → `budget`, `state` → `rpc` → `state`). A cycle
//! means no module can be read, tested or changed without the others in it; the layers are
//! (lowest first) `message`/`private` → `budget` → `settings` → `openrouter` → `usage` →
//! `protocol` → `services` → `gate` → `edit`/`review` → `rpc`.
//!
//! The graph is read as `/work/tools/modcycles.py` reads it: every `crate::x` path (and each
//! name of a `crate::{a, b::c}` group) in a module's files, before its `#[cfg(test)] mod tests`,
//! is an edge to the top-level module `x`; `main.rs` and `lib.rs` are the roots, not modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Each top-level module of `src` and the top-level modules its files name.
fn graph(src: &Path) -> Graph {
    let mut g = Graph::new();
    let mut files = Vec::new();
    collect(src, &mut files);
    for p in files {
        let rel = p.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        let mut text = std::fs::read_to_string(&p).unwrap();
        if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
            text.truncate(i);
        }
        let deps = g.entry(top.clone()).or_default();
        for name in crate_paths(&text) {
            if name != top {
                deps.insert(name);
            }
        }
    }
    g
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level names after `crate::`: `crate::x` and each `crate::{a, b::c}` member.
fn crate_paths(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let n = ident(part.trim());
                if !n.is_empty() {
                    names.push(n);
                }
            }
        } else {
            let n = ident(rest);
            if !n.is_empty() {
                names.push(n);
            }
        }
    }
    names
}

/// The strongly connected groups of more than one module (Tarjan's algorithm).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut walk = Walk {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    let names: BTreeSet<&str> = g
        .iter()
        .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(v.iter().map(String::as_str)))
        .collect();
    for v in names {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}

#[test]
fn the_reader_sees_what_the_script_sees() {
    let text = "use crate::budget::Usd;\nuse crate::{gate, settings::Config};\n\
                #[cfg(test)]\nmod tests { use crate::rpc; }";
    let mut names = crate_paths(text);
    names.sort();
    assert_eq!(names, ["budget", "gate", "rpc", "settings"]);
    let g: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .iter()
        .fold(Graph::new(), |mut g, (f, t)| {
            g.entry(f.to_string()).or_default().insert(t.to_string());
            g
        });
    assert_eq!(cycles(&g), [["a", "b", "c"]]);
}

#[test]
fn no_top_level_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 5, "read src/: {g:?}");
    let found = cycles(&g);
    let shown: Vec<String> = g
        .iter()
        .map(|(m, d)| format!("{m} -> {}", d.iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect();
    assert!(
        found.is_empty(),
        "module cycles {found:?}; the graph:\n{}",
        shown.join("\n")
    );
}
