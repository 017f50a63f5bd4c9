//! The structure stays as docs/architecture.md draws it, checked from the source:
//! - the import graph of `src/` (which module names which, through `crate::` and
//!   `super::` paths) has no circle, and no module imports one of a higher layer;
//! - no function outside tests is over 100 lines, and few are over 60;
//! - `src/main.rs` stays a dispatcher of under 150 lines.
//!
//! It reads the text, not the compiler's view: a `use` of a module counts, and so does
//! a path written inline (`crate::driver::scenario::secs(..)`). Test code (a
//! `#[cfg(test)] mod tests` block at a file's end, or a `tests.rs` file) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may import its own layer's modules and lower
/// ones, never a higher one. (Keep in step with docs/architecture.md.)
const LAYERS: &[&[&str]] = &[
    &[
        "lib", "choice", "duration", "process", "http", "finding", "term",
    ],
    &["formats", "wire", "topology"],
    &["verify", "gen"],
    &["proxy", "rundir", "fs"],
    &["demo", "watch"],
    &["driver"],
    &["report"],
    &["plans", "outcome", "bench"],
];

fn layer_of(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| {
            panic!("module {top} has no layer: add it to LAYERS and docs/architecture.md")
        })
}

/// Every library source file (not the binary's, not tests), with its module path.
fn sources() -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::from("src")];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path != Path::new("src/cli") {
                    todo.push(path);
                }
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" || name == "main.rs" {
                continue;
            }
            let rel = path.strip_prefix("src").unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            out.push((path, module));
        }
    }
    out.sort();
    out
}

/// The text of a file without its trailing test module and without line comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let test_module = regex::Regex::new(r"\n#\[cfg\(test\)\]\nmod \w+ \{").unwrap();
    let text = match test_module.find(&text) {
        Some(at) => text[..at.start()].to_string(),
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths `code` names through `crate::` and `super::`, resolved from
/// `module` (whose file is a `mod.rs` when `is_dir`).
fn named_paths(code: &str, module: &[String], is_dir: bool) -> Vec<Vec<String>> {
    let re = regex::Regex::new(
        r"\b(crate|super)((?:::super)*)((?:::[A-Za-z_][A-Za-z_0-9]*)*)(::\{[^}]*\})?",
    )
    .unwrap();
    let mut out = Vec::new();
    for m in re.captures_iter(code) {
        let mut base: Vec<String> = if &m[1] == "crate" {
            vec![]
        } else {
            let mut b = module.to_vec();
            if !is_dir {
                b.pop();
            }
            for _ in 0..m[2].matches("super").count() {
                b.pop();
            }
            b
        };
        base.extend(m[3].split("::").filter(|s| !s.is_empty()).map(String::from));
        match m.get(4) {
            Some(group) => {
                let items = &group.as_str()[3..group.as_str().len() - 1];
                for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let mut path = base.clone();
                    if item != "self" {
                        path.extend(item.split("::").map(String::from));
                    }
                    out.push(path);
                }
            }
            None => out.push(base),
        }
    }
    out
}

/// Which module imports which: module path (`driver::run`) to the modules it names.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(_, m)| m.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, module) in &files {
        let is_dir = path.ends_with("mod.rs") || path.ends_with("lib.rs");
        let from = join(module);
        let entry = graph.entry(from.clone()).or_default();
        for mut target in named_paths(&code_of(path), module, is_dir) {
            while !target.is_empty() && !modules.contains(&target) {
                target.pop();
            }
            let to = join(&target);
            if to != from {
                entry.insert(to);
            }
        }
    }
    graph
}

fn join(module: &[String]) -> String {
    if module.is_empty() {
        "lib".to_string()
    } else {
        module.join("::")
    }
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

/// Whether `ancestor` is a parent module of `module` (a child naming what its parent
/// declares is how Rust modules share their types, not a circle).
fn is_ancestor(ancestor: &str, module: &str) -> bool {
    ancestor == "lib" || module.starts_with(&format!("{ancestor}::"))
}

#[test]
fn no_module_imports_a_higher_layer() {
    let mut upward = Vec::new();
    for (from, tos) in import_graph() {
        for to in tos {
            if layer_of(top(&to)) > layer_of(top(&from)) {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_import_graph_has_no_circle() {
    let graph = import_graph();
    let mut circles = Vec::new();
    for start in graph.keys() {
        // A path back to `start` through modules that are not its ancestors.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if is_ancestor(next, &at) {
                    continue;
                }
                if next == start {
                    circles.push(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// `code` with the insides of string and char literals blanked (so their braces do not
/// count), keeping every newline.
fn without_literals(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let raw = c == b'r'
            && matches!(bytes.get(i + 1), Some(b'"' | b'#'))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if raw {
            let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
            if bytes.get(i + 1 + hashes) == Some(&b'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let start = i + 2 + hashes;
                let end = code[start..]
                    .find(&close)
                    .map_or(code.len(), |e| start + e + close.len());
                out.extend(
                    code[i..end]
                        .chars()
                        .map(|c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = end;
                continue;
            }
        }
        if c == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            out.extend(
                code[i..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
            continue;
        }
        if c == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
            let close = if bytes.get(i + 1) == Some(&b'\\') {
                code[i + 2..].find('\'').map(|e| i + 2 + e)
            } else {
                code[i + 1..].chars().next().and_then(|ch| {
                    let after = i + 1 + ch.len_utf8();
                    (bytes.get(after) == Some(&b'\'')).then_some(after)
                })
            };
            if let Some(end) = close {
                out.push_str(&" ".repeat(code[i..=end].chars().count()));
                i = end + 1;
                continue;
            }
        }
        let ch = code[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Every function of `path` outside its test module: (name, first line, lines long).
fn functions(path: &Path) -> Vec<(String, usize, usize)> {
    let code = without_literals(&code_of(path));
    let head = regex::Regex::new(
        r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)",
    )
    .unwrap();
    let mut out = Vec::new();
    for m in head.captures_iter(&code) {
        let start = m.get(0).unwrap().start();
        // The body opens at the first `{` after the signature (or there is none: `;`).
        let Some(open) = code[start..].find(['{', ';']).map(|o| start + o) else {
            continue;
        };
        if code.as_bytes()[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let mut end = code.len();
        for (k, b) in code.bytes().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = code[..start].matches('\n').count() + 1;
        let last = code[..end].matches('\n').count() + 1;
        out.push((m[1].to_string(), first, last - first + 1));
    }
    out
}

#[test]
fn no_function_is_over_100_lines() {
    let mut long = Vec::new();
    for (path, _) in sources() {
        for (name, line, lines) in functions(&path) {
            if lines > 100 {
                long.push(format!(
                    "{}:{line}: {name} is {lines} lines",
                    path.display()
                ));
            }
        }
    }
    let mut binary = vec![PathBuf::from("src/main.rs")];
    binary.extend(
        std::fs::read_dir("src/cli")
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    );
    for path in binary {
        for (name, line, lines) in functions(&path) {
            if lines > 100 {
                long.push(format!(
                    "{}:{line}: {name} is {lines} lines",
                    path.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 100 lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn main_is_a_dispatcher() {
    let lines = std::fs::read_to_string("src/main.rs")
        .unwrap()
        .lines()
        .count();
    assert!(
        lines < 150,
        "src/main.rs is {lines} lines: arguments and handlers live in src/cli/"
    );
}

/// Few functions are over 60 lines: this many at most (a ratchet: lower it when one is
/// split, never raise it). Most of those left are one `match` over a format's cases
/// (a frame decoder, a literal's escapes) or a demo component's main loop.
const OVER_60_AT_MOST: usize = 36;

#[test]
fn few_functions_are_over_60_lines() {
    let mut long = Vec::new();
    for (path, _) in sources() {
        for (name, line, lines) in functions(&path) {
            if lines > 60 {
                long.push(format!(
                    "{}:{line}: {name} is {lines} lines",
                    path.display()
                ));
            }
        }
    }
    assert!(
        long.len() <= OVER_60_AT_MOST,
        "{} functions over 60 lines, more than {OVER_60_AT_MOST}:\n{}",
        long.len(),
        long.join("\n")
    );
}
