//! The customer docs (`docs/` of the repository), compiled into the binary by
//! `build.rs` and rendered once, on first use, into pages served at
//! `/docs/<slug>`: `getting-started.md` is `/docs/getting-started`,
//! `clients/lego.md` is `/docs/clients/lego`, a folder's `README.md` is the
//! folder (`/docs/clients`).

mod render;

use std::collections::HashMap;
use std::sync::LazyLock;

pub use render::inline_markdown;

/// (path under docs/, Markdown source) of every doc, from `build.rs`.
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/docs_files.rs"));

/// The navigation's groups, in order.
pub const SECTIONS: &[&str] = &["Start here", "Clients", "Reference", "Help"];

/// One rendered doc.
pub struct Doc {
    /// The path under docs/ (`clients/lego.md`).
    pub path: &'static str,
    /// `/docs/<slug>`.
    pub slug: String,
    pub title: String,
    pub section: &'static str,
    pub html: String,
    /// Logged at start; the tests keep it empty.
    #[cfg_attr(not(test), allow(dead_code))]
    pub broken_links: Vec<String>,
}

impl Doc {
    pub fn url(&self) -> String {
        format!("/docs/{}", self.slug)
    }
}

/// Every doc, in navigation order.
pub struct Docs {
    pub pages: Vec<Doc>,
    by_slug: HashMap<String, usize>,
}

impl Docs {
    pub fn get(&self, slug: &str) -> Option<&Doc> {
        self.by_slug.get(slug).map(|&i| &self.pages[i])
    }
}

/// Rendered on first use; the sources never change while the binary runs.
pub static DOCS: LazyLock<Docs> = LazyLock::new(|| build(FILES));

/// The slug of the doc at `path`.
fn slug_of(path: &str) -> String {
    let stem = path.strip_suffix(".md").unwrap_or(path);
    match stem.strip_suffix("README") {
        Some("") => "overview".to_owned(),
        Some(folder) => folder.trim_end_matches('/').to_owned(),
        None => stem.to_owned(),
    }
}

/// Where a doc goes in the navigation: its group and its rank in the group
/// (known docs in reading order, others after them by title).
fn placement(path: &str) -> (&'static str, usize) {
    const ORDER: &[(&str, &str)] = &[
        ("getting-started.md", "Start here"),
        ("migrate-from-acme-dns.md", "Start here"),
        ("clients/README.md", "Clients"),
        ("api.md", "Reference"),
        ("account-api.md", "Reference"),
        ("dns.md", "Reference"),
        ("dns-account-01.md", "Reference"),
        ("security.md", "Reference"),
        ("billing.md", "Reference"),
        ("troubleshooting.md", "Help"),
    ];
    match ORDER.iter().position(|(p, _)| *p == path) {
        Some(i) => (ORDER[i].1, i),
        None if path.starts_with("clients/") => ("Clients", ORDER.len()),
        None => ("Reference", ORDER.len()),
    }
}

fn build(files: &'static [(&'static str, &'static str)]) -> Docs {
    let urls: HashMap<&str, String> =
        files.iter().map(|(path, _)| (*path, format!("/docs/{}", slug_of(path)))).collect();
    let resolve = |path: &str| urls.get(path).cloned();
    let mut pages: Vec<Doc> = files
        .iter()
        .map(|(path, source)| {
            let rendered = render::render(path, source, &resolve);
            for link in &rendered.broken_links {
                tracing::warn!(doc = path, link = link.as_str(), "a link in the docs leads to no doc; shown as text");
            }
            let title = if rendered.title.is_empty() { slug_of(path) } else { rendered.title };
            Doc {
                path,
                slug: slug_of(path),
                title,
                section: placement(path).0,
                html: rendered.html,
                broken_links: rendered.broken_links,
            }
        })
        .collect();
    pages.sort_by(|a, b| {
        let rank = |d: &Doc| SECTIONS.iter().position(|s| *s == d.section).unwrap_or(SECTIONS.len());
        (rank(a), placement(a.path).1, &a.title).cmp(&(rank(b), placement(b.path).1, &b.title))
    });
    let by_slug = pages.iter().enumerate().map(|(i, d)| (d.slug.clone(), i)).collect();
    Docs { pages, by_slug }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_doc_renders_with_a_title_and_no_broken_link() {
        assert!(DOCS.pages.len() >= 10, "docs/ is embedded");
        for doc in &DOCS.pages {
            assert!(!doc.title.is_empty(), "{}", doc.path);
            assert!(doc.broken_links.is_empty(), "{} links to what is not a doc: {:?}", doc.path, doc.broken_links);
            assert!(std::ptr::eq(DOCS.get(&doc.slug).unwrap(), doc), "{} has a unique slug", doc.path);
        }
        for slug in ["getting-started", "troubleshooting", "clients", "clients/lego", "api"] {
            assert!(DOCS.get(slug).is_some(), "{slug}");
        }
        assert_eq!(DOCS.pages[0].slug, "getting-started", "the first page to read comes first");
    }

    #[test]
    fn slugs_follow_the_paths() {
        assert_eq!(slug_of("clients/README.md"), "clients");
        assert_eq!(slug_of("README.md"), "overview");
        assert_eq!(slug_of("clients/acme.sh.md"), "clients/acme.sh");
    }
}
