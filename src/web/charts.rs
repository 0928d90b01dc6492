//! The statistics charts, drawn on the server as SVG with plotters (its SVG backend escapes text).

use plotters::prelude::*;

const BLUE_INK: RGBColor = RGBColor(31, 95, 160);
const GREEN_INK: RGBColor = RGBColor(46, 125, 50);

/// A line chart over days: `points` are (day label, value); `max` the top of the value axis
/// (`None`: the largest value). Values as percentages when `percent`.
pub fn line(points: &[(String, f64)], percent: bool, width: u32) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 240)).into_drawing_area();
        let _ = draw_line(&root, points, percent);
        let _ = root.present();
    }
    svg
}

fn draw_line(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[(String, f64)],
    percent: bool,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let n = points.len().max(1);
    let top = if percent { 100.0 } else { points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1 };
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .margin_right(48)
        .x_label_area_size(30)
        .y_label_area_size(52)
        .build_cartesian_2d(0..(n as i32 - 1).max(1), 0.0..top)?;
    let label = |x: &i32| points.get(*x as usize).map(|p| p.0.clone()).unwrap_or_default();
    let y_label = |y: &f64| if percent { format!("{y:.0}%") } else { format!("{y:.0}") };
    chart
        .configure_mesh()
        .x_labels(4)
        .y_labels(5)
        .label_style(("sans-serif", 15))
        .x_label_formatter(&label)
        .y_label_formatter(&y_label)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let color = if percent { GREEN_INK } else { BLUE_INK };
    chart.draw_series(LineSeries::new(points.iter().enumerate().map(|(i, p)| (i as i32, p.1)), color.stroke_width(2)))?;
    if points.len() == 1 {
        chart.draw_series(std::iter::once(Circle::new((0, points[0].1), 3, color.filled())))?;
    }
    Ok(())
}

/// A horizontal bar chart of counts, longest first, with each label and count written on its bar.
pub fn bars(items: &[(String, i64)], width: u32) -> String {
    let height = 28 * items.len().max(1) as u32 + 8;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = draw_bars(&root, items, width);
        let _ = root.present();
    }
    svg
}

fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    items: &[(String, i64)],
    width: u32,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let max = items.iter().map(|i| i.1).max().unwrap_or(1).max(1) as f64;
    let style = TextStyle::from(("sans-serif", 16).into_font()).color(&BLACK);
    for (i, (label, count)) in items.iter().enumerate() {
        let y = 4 + 28 * i as i32;
        let length = ((width as f64 - 8.0) * (*count as f64 / max)).round().max(2.0) as i32;
        root.draw(&Rectangle::new([(4, y), (4 + length, y + 24)], RGBColor(207, 224, 242).filled()))?;
        let shown: String = label.chars().take(60).collect();
        let ellipsis = if label.chars().count() > 60 { "…" } else { "" };
        root.draw(&Text::new(format!("{shown}{ellipsis} ({count})"), (8, y + 5), style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_a_view_box_and_escaped_labels() {
        let svg = bars(&[("<script>x</script> & co".into(), 3), ("b".into(), 1)], 400);
        assert!(svg.starts_with("<svg") && svg.contains("viewBox"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        let svg = line(&[("2026-12-01".into(), 3.0), ("2026-12-02".into(), 5.0)], false, 600);
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(line(&[], true, 300).starts_with("<svg"));
    }
}
