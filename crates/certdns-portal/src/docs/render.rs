//! One Markdown page to HTML (pulldown-cmark): raw HTML in the source is shown
//! as text, never passed through; headings get GitHub-style ids (so `page.md#a-heading`
//! links keep working); links to other docs become their portal URLs; code
//! blocks get a copy button above them.

use std::collections::HashSet;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// What rendering one page gave.
pub struct Rendered {
    pub title: String,
    pub html: String,
    /// Relative links that name no doc (shown as plain text); the tests keep this empty.
    pub broken_links: Vec<String>,
}

/// Renders `source`, the doc at `path` (under docs/, e.g. `clients/lego.md`);
/// `resolve` maps a doc path to its URL, `None` when there is no such doc.
pub fn render(path: &str, source: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Rendered {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let mut events: Vec<Event> = Parser::new_ext(source, options).collect();
    let title = name_headings(&mut events);
    let mut broken_links = Vec::new();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    // Links dropped because they lead nowhere: their End is dropped too.
    let mut dropped_links = Vec::new();
    let mut code_blocks = 0;
    for event in events {
        match event {
            // Our docs have no reason for raw HTML: show it as the text it is.
            Event::Html(html) | Event::InlineHtml(html) => out.push(Event::Text(html)),
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                match rewrite_link(path, &dest_url, resolve) {
                    Some(url) => {
                        dropped_links.push(false);
                        out.push(Event::Start(Tag::Link { link_type, dest_url: url.into(), title, id }));
                    }
                    None => {
                        broken_links.push(dest_url.to_string());
                        dropped_links.push(true);
                    }
                }
            }
            Event::End(TagEnd::Link) => {
                if !dropped_links.pop().unwrap_or(false) {
                    out.push(Event::End(TagEnd::Link));
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                code_blocks += 1;
                let class = match &kind {
                    CodeBlockKind::Fenced(lang) if !lang.is_empty() => {
                        let lang: String = lang.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                        format!(" class=\"language-{lang}\"")
                    }
                    _ => String::new(),
                };
                out.push(Event::Html(
                    format!(
                        "<div class=\"copy-block\"><button type=\"button\" class=\"small secondary\" \
                         data-copy=\"#code-{code_blocks}\">Copy</button><pre id=\"code-{code_blocks}\" \
                         tabindex=\"0\"><code{class}>"
                    )
                    .into(),
                ));
            }
            Event::End(TagEnd::CodeBlock) => out.push(Event::Html("</code></pre></div>\n".into())),
            other => out.push(other),
        }
    }
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, out.into_iter());
    Rendered { title, html, broken_links }
}

/// A short Markdown text (an API description) as HTML, raw HTML shown as text.
pub fn inline_markdown(source: &str) -> String {
    let events = Parser::new_ext(source, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Gives every heading an id from its text (GitHub's rule: lower case, spaces
/// to hyphens, punctuation dropped, `-1`, `-2`… for repeats); returns the text
/// of the first level-1 heading.
fn name_headings(events: &mut [Event]) -> String {
    let mut used = HashSet::new();
    let mut title = String::new();
    for i in 0..events.len() {
        let Event::Start(Tag::Heading { level, .. }) = &events[i] else { continue };
        let level = *level;
        let text: String = events[i + 1..]
            .iter()
            .take_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))))
            .filter_map(|e| match e {
                Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        if level == HeadingLevel::H1 && title.is_empty() {
            title = text.clone();
        }
        let base = slug(&text);
        let mut id = base.clone();
        let mut n = 0;
        while !used.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[i] {
            *slot = Some(CowStr::from(id));
        }
    }
    title
}

/// A heading's anchor, as GitHub makes it.
pub fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The URL a link in the doc at `from` should have: absolute URLs and anchors
/// as they are, a relative link to another doc as that doc's URL (with its
/// anchor), `None` for a relative link to anything else.
fn rewrite_link(from: &str, dest: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let is_absolute = dest.starts_with('#')
        || dest.starts_with('/')
        || dest
            .split_once(':')
            .is_some_and(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)));
    if is_absolute {
        return Some(dest.to_owned());
    }
    let (target, anchor) = match dest.split_once('#') {
        Some((target, anchor)) => (target, Some(anchor)),
        None => (dest, None),
    };
    let joined = join(from, target)?;
    let url = resolve(&joined).or_else(|| resolve(&format!("{}/README.md", joined.trim_end_matches('/'))))?;
    Some(match anchor {
        Some(anchor) => format!("{url}#{anchor}"),
        None => url,
    })
}

/// `target` relative to the folder of `from`, `..` and `.` folded; `None` when
/// it climbs out of docs/.
fn join(from: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(path: &str) -> Option<String> {
        match path {
            "security.md" => Some("/docs/security".into()),
            "clients/lego.md" => Some("/docs/clients/lego".into()),
            "clients/README.md" => Some("/docs/clients".into()),
            _ => None,
        }
    }

    #[test]
    fn links_between_docs_become_portal_urls() {
        let md = "# T\n[a](../security.md) [b](lego.md#httpreq) [c](https://x.example/a.md) [d](#t) \
                  [e](../../deploy/README.md) [f](./) [g](mailto:a@b.example)";
        let page = render("clients/certbot.md", md, &resolve);
        for href in [
            "/docs/security",
            "/docs/clients/lego#httpreq",
            "https://x.example/a.md",
            "#t",
            "/docs/clients",
            "mailto:a@b.example",
        ] {
            assert!(page.html.contains(&format!("href=\"{href}\"")), "{href}: {}", page.html);
        }
        assert_eq!(page.broken_links, ["../../deploy/README.md"]);
        assert!(page.html.contains(">e<") || page.html.contains(" e "), "the text stays: {}", page.html);
        assert!(!page.html.contains("deploy/README"));
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let page =
            render("a.md", "# Title\n<script>alert(1)</script>\n\nSee <uuid> and <img src=x onerror=y>.", &resolve);
        assert!(!page.html.contains("<script") && !page.html.contains("<img"), "{}", page.html);
        assert!(page.html.contains("&lt;script&gt;") && page.html.contains("&lt;uuid&gt;"), "{}", page.html);
        assert_eq!(page.title, "Title");
    }

    #[test]
    fn headings_get_github_ids_and_code_blocks_a_copy_button() {
        let md = "# certdns: the docs\n## HTTP storage (lego)\n## HTTP storage (lego)\n```sh\necho \"<b>\"\n```\n";
        let page = render("a.md", md, &resolve);
        assert!(page.html.contains("<h1 id=\"certdns-the-docs\">"), "{}", page.html);
        assert!(page.html.contains("id=\"http-storage-lego\"") && page.html.contains("id=\"http-storage-lego-1\""));
        assert!(page.html.contains("data-copy=\"#code-1\"") && page.html.contains("<pre id=\"code-1\""));
        assert!(
            page.html.contains("class=\"language-sh\"") && page.html.contains("echo \"&lt;b&gt;\""),
            "{}",
            page.html
        );
    }
}
