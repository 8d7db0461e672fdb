//! Server-rendered SVG bar charts (no script, no external assets).

use std::fmt::Write;

use time::Date;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A bar chart of one value per day. `label` names the series (escaped here).
pub fn daily_bars(label: &str, first_day: Date, values: &[u64]) -> String {
    const W: u32 = 640;
    const H: u32 = 140;
    const LEFT: u32 = 40;
    const BOTTOM: u32 = 22;
    const TOP: u32 = 10;
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let total: u64 = values.iter().sum();
    let n = values.len().max(1) as u32;
    let plot_w = W - LEFT - 8;
    let plot_h = H - BOTTOM - TOP;
    let slot = plot_w as f64 / f64::from(n);
    let label = escape(label);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="t-{id}" xmlns="http://www.w3.org/2000/svg"><title id="t-{id}">{label}: {total} updates in {n} days, at most {max} a day</title>"#,
        id = label.len() ^ (total as usize),
    );
    // Axis and gridlines.
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{W}" y2="{TOP}" class="grid"/><line x1="{LEFT}" y1="{y}" x2="{W}" y2="{y}" class="axis"/><text x="{tx}" y="{ty}" class="tick" text-anchor="end">{max}</text><text x="{tx}" y="{y}" class="tick" text-anchor="end">0</text>"#,
        y = TOP + plot_h,
        tx = LEFT - 6,
        ty = TOP + 4,
    );
    for (i, v) in values.iter().enumerate() {
        let h = (*v as f64 / max as f64) * f64::from(plot_h);
        let x = f64::from(LEFT) + slot * i as f64 + slot * 0.15;
        let y = f64::from(TOP + plot_h) - h;
        let day = first_day + time::Duration::days(i as i64);
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" class="bar"><title>{day}: {v}</title></rect>"#,
            w = slot * 0.7,
        );
    }
    let last = first_day + time::Duration::days(i64::from(n) - 1);
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{H}" class="tick">{first_day}</text><text x="{W}" y="{H}" class="tick" text-anchor="end">{last}</text></svg>"#,
    );
    svg
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_bar_per_day_and_escapes_the_label() {
        let day = Date::from_calendar_date(2026, time::Month::November, 1).unwrap();
        let svg = daily_bars("<web>", day, &[0, 3, 1]);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("&lt;web&gt;"));
        assert!(svg.contains("2026-11-03"));
        assert!(!svg.contains("<web>"));
    }
}
