//! Every relative link in README.md and docs/**/*.md works: the file or directory it names
//! exists, and a `#anchor` is the GitHub slug of a heading in the Markdown file it points to.
//!
//! A plain line scan, no Markdown parser: links are `](target)` outside fenced code blocks and
//! inline code spans, plus reference definitions `[label]: target`. `http(s)://` and `mailto:`
//! targets are not checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// README.md and every `.md` file under docs/, sorted.
fn documents(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut out);
    out.sort();
    out
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(f), Some(m)) if f == m => fence = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// The line with inline code spans removed (their content is not Markdown).
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// Link targets of one line: `](target)` and `[label]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| c == ')' || c.is_whitespace())
            .unwrap_or(after.len());
        let target = after[..end].trim_start_matches('<').trim_end_matches('>');
        out.push(target.to_string());
        rest = &after[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(close) = trimmed.find("]:")
        && let Some(target) = trimmed[close + 2..].split_whitespace().next()
    {
        out.push(target.to_string());
    }
    out
}

/// GitHub's anchor for a heading text: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    // Rendered text: code spans keep their content, links keep their text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](") {
            Some(mid) => {
                let close = rest[open + mid..].find(')').map(|c| open + mid + c);
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                rest = close.map_or("", |c| &rest[c + 1..]);
            }
            None => break,
        }
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text: its headings' slugs, repeats numbered `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = line[hashes..].trim().trim_end_matches('#').trim();
        let base = slug(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        out.insert(candidate);
    }
    out
}

/// The broken links of one Markdown file, as `file:line: target: why`.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("a readable Markdown file");
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let dir = file.parent().expect("a file has a directory");
    let mut out = Vec::new();
    for (number, line) in prose_lines(&text) {
        for target in link_targets(line) {
            let lower = target.to_ascii_lowercase();
            if lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
            {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            if path.is_empty() && anchor.is_none() {
                out.push(format!("{shown}:{number}: `{target}`: empty link"));
                continue;
            }
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else if path.starts_with('/') {
                root.join(path.trim_start_matches('/'))
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                out.push(format!("{shown}:{number}: `{target}`: no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if resolved.extension().is_none_or(|e| e != "md") {
                out.push(format!(
                    "{shown}:{number}: `{target}`: an anchor into a file that is not Markdown"
                ));
                continue;
            }
            let target_text = std::fs::read_to_string(&resolved).expect("a readable target");
            if !anchors(&target_text).contains(anchor) {
                out.push(format!(
                    "{shown}:{number}: `{target}`: no heading `#{anchor}`"
                ));
            }
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_works() {
    let root = workspace_root();
    let files = documents(&root);
    assert!(
        files.iter().any(|f| f.starts_with(root.join("docs"))),
        "docs/ holds Markdown files"
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
    assert!(
        broken.is_empty(),
        "broken links ({}):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Errors, retries and concurrency"),
        "errors-retries-and-concurrency"
    );
    assert_eq!(slug("The `risk-service` API"), "the-risk-service-api");
    assert_eq!(slug("Roles and the matrix"), "roles-and-the-matrix");
    assert_eq!(slug("TLS and mTLS"), "tls-and-mtls");
    assert_eq!(slug("A — B"), "a--b");
    assert_eq!(slug("See [Security](security.md)"), "see-security");
    let repeated = anchors("# Notes\n## Notes\n```\n# not a heading\n```\n### Notes\n");
    assert_eq!(
        repeated,
        HashSet::from(["notes".into(), "notes-1".into(), "notes-2".into()])
    );
}

#[test]
fn the_checker_finds_broken_links() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).expect("docs/");
    std::fs::write(root.join("docs/a.md"), "# A page\n\n## Part two\n").expect("docs/a.md");
    std::fs::write(
        root.join("README.md"),
        "# Readme\n\
         [ok](docs/a.md) [ok](docs/a.md#part-two) [ok](#readme) [web](https://example.com/x#y)\n\
         `[code](missing.md)`\n\
         ```\n[fenced](missing.md)\n```\n\
         [gone](docs/missing.md) [bad anchor](docs/a.md#part-three) [self](#nowhere)\n\
         [ref]: docs/nothing.md\n",
    )
    .expect("README.md");
    let broken = broken_links(root, &root.join("README.md"));
    assert_eq!(broken.len(), 4, "{broken:#?}");
    assert!(broken[0].contains("README.md:7: `docs/missing.md`: no such file"));
    assert!(broken[1].contains("`docs/a.md#part-three`: no heading `#part-three`"));
    assert!(broken[2].contains("`#nowhere`: no heading"));
    assert!(broken[3].contains("README.md:8: `docs/nothing.md`"));
}
