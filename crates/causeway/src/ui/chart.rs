//! Charts as inline SVG, drawn by `plotters` (SVG backend only): burn rate over time per SLO
//! tier, and pages per team (adaptive against static routing). Axes, ticks, scaling and legends
//! are the library's; this module only feeds it series. It must not read any clock: times come in.

use plotters::coord::Shift;
use plotters::prelude::*;

/// A burn-rate line: one tier's long-window burn rate per minute, and its alert threshold.
pub struct BurnSeries {
    pub name: String,
    /// (minute as Unix minutes, burn rate)
    pub points: Vec<(i64, f64)>,
    pub threshold: f64,
    pub page: bool,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0xc0, 0x39, 0x2b),
    RGBColor(0xd3, 0x7a, 0x0b),
    RGBColor(0x2e, 0x6d, 0xb4),
    RGBColor(0x5b, 0x8c, 0x3a),
    RGBColor(0x7d, 0x4c, 0xa8),
    RGBColor(0x44, 0x44, 0x44),
];
const TEXT: RGBColor = RGBColor(0x22, 0x2b, 0x36);
const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xec);

/// Burn rate over the last minutes for each tier, thresholds dashed in the same colour.
/// `title` labels the chart for screen readers.
pub fn burn_rates(title: &str, series: &[BurnSeries]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        draw_burn_rates(&root, series).map_err(|error| anyhow::anyhow!("burn-rate chart: {error}"))?;
        root.present().map_err(|error| anyhow::anyhow!("burn-rate chart: {error}"))?;
    }
    Ok(label_svg(svg, "chart burn-chart", title))
}

fn draw_burn_rates(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    series: &[BurnSeries],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let first = series.iter().flat_map(|s| s.points.first()).map(|p| p.0).min().unwrap_or(0);
    let last = series.iter().flat_map(|s| s.points.last()).map(|p| p.0).max().unwrap_or(first + 60).max(first + 1);
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1).chain(std::iter::once(s.threshold)))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(first..last, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(TEXT)
        .label_style(("sans-serif", 15).into_font().color(&TEXT))
        .x_labels(7)
        .y_labels(6)
        .x_label_formatter(&|minute| minute_label(*minute))
        .y_label_formatter(&|burn| format!("{burn:.0}×"))
        .draw()?;
    for (index, line) in series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
            .label(format!(
                "{} ({}, alert at {:.1}×)",
                line.name,
                if line.page { "page" } else { "ticket" },
                line.threshold
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(DashedLineSeries::new(
            [(first, line.threshold), (last, line.threshold)],
            6,
            4,
            color.mix(0.7).stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font(("sans-serif", 15).into_font().color(&TEXT))
        .draw()?;
    Ok(())
}

/// `HH:MM` (UTC) of a Unix minute.
fn minute_label(minute: i64) -> String {
    let total = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", total / 60, total % 60)
}

/// Pages per team, adaptive (Causeway) beside static routing, as horizontal bars.
pub fn pages_by_team(title: &str, teams: &[(String, u64, u64)]) -> anyhow::Result<String> {
    let mut svg = String::new();
    let height = 70 + 34 * teams.len().max(1) as u32;
    {
        let root = SVGBackend::with_string(&mut svg, (640, height)).into_drawing_area();
        draw_pages(&root, teams).map_err(|error| anyhow::anyhow!("pages chart: {error}"))?;
        root.present().map_err(|error| anyhow::anyhow!("pages chart: {error}"))?;
    }
    Ok(label_svg(svg, "chart pages-chart", title))
}

fn draw_pages(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    teams: &[(String, u64, u64)],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let n = teams.len().max(1) as i32;
    // Whole pages on the axis: an integer range gives integer ticks.
    let most = teams.iter().map(|(_, adaptive, fixed)| (*adaptive).max(*fixed)).max().unwrap_or(0).max(1);
    // Room on the right for the legend, so it never covers a bar.
    let top = most + (most * 3).div_ceil(5) + 1;
    let label_width =
        teams.iter().map(|(team, _, _)| team.chars().count()).max().unwrap_or(4).clamp(4, 24) as u32 * 7 + 12;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0..top, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(TEXT)
        .label_style(("sans-serif", 15).into_font().color(&TEXT))
        .x_labels((top as usize + 1).min(8))
        .x_label_formatter(&|pages| pages.to_string())
        .y_labels(teams.len().max(1))
        .y_label_formatter(&|value| match value {
            SegmentValue::CenterOf(index) => {
                teams.get(*index as usize).map(|(team, _, _)| team.clone()).unwrap_or_default()
            }
            _ => String::new(),
        })
        .draw()?;
    // Two bars per team in one band: the band's pixel height is split by margins.
    let band = (chart.plotting_area().dim_in_pixel().1 / n as u32).max(8);
    let half = band / 2;
    let adaptive_color = PALETTE[2];
    let static_color = RGBColor(0xa8, 0xb3, 0xbf);
    let bars = |value: fn(&(String, u64, u64)) -> u64, upper: bool, color: RGBColor| {
        teams.iter().enumerate().map(move |(index, team)| {
            let index = index as i32;
            let mut bar = Rectangle::new(
                [(0, SegmentValue::Exact(index)), (value(team), SegmentValue::Exact(index + 1))],
                color.filled(),
            );
            // Upper half (top margin small, bottom margin half the band) or lower half.
            if upper {
                bar.set_margin(half.saturating_sub(2), 4, 0, 0);
            } else {
                bar.set_margin(4, half.saturating_sub(2), 0, 0);
            }
            bar
        })
    };
    chart
        .draw_series(bars(|team| team.1, false, adaptive_color))?
        .label("Causeway (adaptive)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], adaptive_color.filled()));
    chart
        .draw_series(bars(|team| team.2, true, static_color))?
        .label("static routing")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], static_color.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font(("sans-serif", 15).into_font().color(&TEXT))
        .draw()?;
    Ok(())
}

/// Gives the library's `<svg>` a class and an accessible name, and lets CSS scale it.
fn label_svg(svg: String, class: &str, title: &str) -> String {
    let title = maud::html! { (title) }.into_string();
    match svg.find("<svg") {
        Some(start) => {
            let mut out = String::with_capacity(svg.len() + 120);
            out.push_str(&svg[..start]);
            out.push_str(&format!("<svg class=\"{class}\" role=\"img\" aria-label=\"{title}\""));
            out.push_str(&svg[start + 4..]);
            out
        }
        None => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_chart_is_svg_with_every_tier_in_the_legend() {
        let series = vec![
            BurnSeries {
                name: "1h/5m".into(),
                points: vec![(100, 0.0), (101, 20.0), (102, 30.0)],
                threshold: 13.440000000000001,
                page: true,
            },
            BurnSeries {
                name: "6h/30m".into(),
                points: vec![(100, 0.0), (101, 4.0), (102, 8.0)],
                threshold: 6.0,
                page: true,
            },
        ];
        let svg = burn_rates("checkout error burn", &series).expect("chart");
        assert!(
            svg.contains("<svg class=\"chart burn-chart\" role=\"img\" aria-label=\"checkout error burn\""),
            "{svg}"
        );
        assert!(svg.contains("1h/5m (page, alert at 13.4×)"), "{svg}");
        assert!(svg.contains("01:41"), "minute labels are clock times: {svg}");
    }

    #[test]
    fn pages_chart_names_every_team() {
        let teams = vec![("dba".to_string(), 1, 0), ("web".to_string(), 0, 3)];
        let svg = pages_by_team("pages per team", &teams).expect("chart");
        assert!(svg.contains("\ndba\n</text>") && svg.contains("\nweb\n</text>"), "{svg}");
        assert!(svg.contains("static routing"), "{svg}");
        assert!(pages_by_team("none", &[]).is_ok());
    }
}
