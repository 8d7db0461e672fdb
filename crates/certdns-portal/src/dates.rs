//! Times as the portal shows and mails them, written once: `2026-12-01 09:30 UTC`,
//! with "(5 min ago)" where it helps, and Unix seconds from the store read back.

use time::OffsetDateTime;
use time::macros::format_description;

/// A time as the portal shows it: `2026-12-01 09:30 UTC`.
pub(crate) fn when(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).unwrap_or_default()
}

/// `when(t)` and how long ago it was, as people say it: "2026-12-01 13:39 UTC
/// (5 min ago)".
pub(crate) fn when_ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - t).whole_seconds();
    let ago = match secs {
        ..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    };
    format!("{} ({ago})", when(t))
}

pub(crate) fn when_opt(t: Option<OffsetDateTime>, none: &str) -> String {
    t.map(when).unwrap_or_else(|| none.to_owned())
}

/// Unix seconds as stored; `None` for 0 ("never") and out-of-range values.
pub(crate) fn at_unix(secs: i64) -> Option<OffsetDateTime> {
    (secs > 0).then(|| OffsetDateTime::from_unix_timestamp(secs).ok()).flatten()
}

/// [`when`] of Unix seconds; empty when out of range.
pub(crate) fn when_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs).map(when).unwrap_or_default()
}
