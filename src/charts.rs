//! Charts of the inquiry log, drawn once with plotters for any backend: SVG for the web desk's
//! statistics page (the SVG backend escapes text), PNG for Telegram's `/stats` (a bitmap whose text
//! is drawn with the embedded Liberation Sans, encoded by the `png` crate).
//!
//! The titles and labels come from the caller (messages of `dialogs/`), never from here.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::store::DayCount;

const BLUE_INK: RGBColor = RGBColor(31, 95, 160);
const GREEN_INK: RGBColor = RGBColor(46, 125, 50);
/// The font family every chart asks for; a bitmap draws it with [`FONT`].
const FAMILY: &str = "sans-serif";
/// Liberation Sans Regular 2.1.5, under the SIL Open Font License 1.1 (`assets/fonts/OFL.txt`).
static FONT: &[u8] = include_bytes!("../assets/fonts/LiberationSans-Regular.ttf");
/// Most days a daily chart shows (the last ones).
const MAX_DAYS: i64 = 400;

/// Gives plotters the embedded font, once per process. Text is measured with it for SVG too, so
/// every chart calls this first.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::error!("the embedded chart font does not load; charts will have no text");
        }
    });
}

/// The daily series of a period: inquiries per day and the share of free questions answered per
/// day, as (day, value) points. The web desk draws each as SVG, Telegram both in one PNG.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Daily {
    /// Every day from the first to the last with inquiries (at most the last 400), gaps as zero.
    pub per_day: Vec<(String, f64)>,
    /// The days with free questions, as a percentage answered.
    pub answered_share: Vec<(String, f64)>,
}

impl Daily {
    pub fn of(days: &[DayCount]) -> Daily {
        let (Some(first), Some(last)) = (days.first(), days.last()) else { return Daily::default() };
        let start = first.day.max(last.day - (MAX_DAYS - 1));
        let mut by_day: std::collections::HashMap<i64, &DayCount> = days.iter().map(|d| (d.day, d)).collect();
        let series: Vec<DayCount> =
            (start..=last.day).map(|day| by_day.remove(&day).cloned().unwrap_or(DayCount { day, ..DayCount::default() })).collect();
        let label = |d: &DayCount| crate::dates::day_of(d.day * 86_400);
        Daily {
            per_day: series.iter().map(|d| (label(d), d.total as f64)).collect(),
            answered_share: series
                .iter()
                .filter(|d| d.questions > 0)
                .map(|d| (label(d), 100.0 * d.answered as f64 / d.questions as f64))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.per_day.is_empty()
    }
}

/// A line chart over days as SVG: `points` are (day label, value); values as percentages (axis
/// to 100%) when `percent`.
pub fn line(points: &[(String, f64)], percent: bool, width: u32) -> String {
    fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 240)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let _ = draw_line(&root, points, percent, None);
        let _ = root.present();
    }
    svg
}

/// A horizontal bar chart of counts as SVG, longest first, with each label and count on its bar.
pub fn bars(items: &[(String, i64)], width: u32) -> String {
    fonts();
    let height = 28 * items.len().max(1) as u32 + 8;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = draw_bars(&root, items, width);
        let _ = root.present();
    }
    svg
}

/// The size of the PNG of [`daily_png`]: wide enough for a phone screen held either way.
pub const PNG_SIZE: (u32, u32) = (800, 600);

/// Both daily series in one PNG for Telegram: inquiries per day above the share answered, each
/// under its title.
pub fn daily_png(daily: &Daily, titles: (&str, &str)) -> anyhow::Result<Vec<u8>> {
    fonts();
    let (width, height) = PNG_SIZE;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        let drawn = (|| {
            root.fill(&WHITE)?;
            let (top, bottom) = root.split_vertically(height / 2);
            draw_line(&top, &daily.per_day, false, Some(titles.0))?;
            draw_line(&bottom, &daily.answered_share, true, Some(titles.1))?;
            root.present()
        })();
        drawn.map_err(|e| anyhow::anyhow!("cannot draw the chart: {e}"))?;
    }
    let mut out = Vec::with_capacity(32 * 1024);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Draws a line chart over days on any backend, under `title` when given.
fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[(String, f64)],
    percent: bool,
    title: Option<&str>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = points.len().max(1);
    let top = if percent { 100.0 } else { points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1 };
    let mut builder = ChartBuilder::on(root);
    builder.margin(12).margin_right(48).x_label_area_size(30).y_label_area_size(52);
    if let Some(title) = title {
        builder.caption(title, (FAMILY, 20));
    }
    let mut chart = builder.build_cartesian_2d(0..(n as i32 - 1).max(1), 0.0..top)?;
    let label = |x: &i32| points.get(*x as usize).map(|p| p.0.clone()).unwrap_or_default();
    let y_label = |y: &f64| if percent { format!("{y:.0}%") } else { format!("{y:.0}") };
    chart
        .configure_mesh()
        .x_labels(4)
        .y_labels(5)
        .label_style((FAMILY, 15))
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

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    items: &[(String, i64)],
    width: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let max = items.iter().map(|i| i.1).max().unwrap_or(1).max(1) as f64;
    let style = TextStyle::from((FAMILY, 16).into_font()).color(&BLACK);
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

    fn day(day: i64, total: i64, questions: i64, answered: i64) -> DayCount {
        DayCount { day, total, questions, answered, ..DayCount::default() }
    }

    #[test]
    fn charts_are_svg_with_a_view_box_and_escaped_labels() {
        let svg = bars(&[("<script>x</script> & co".into(), 3), ("b".into(), 1)], 400);
        assert!(svg.starts_with("<svg") && svg.contains("viewBox"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        let svg = line(&[("2026-12-01".into(), 3.0), ("2026-12-02".into(), 5.0)], false, 600);
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(svg.contains("2026-12-01"), "the day labels are drawn: {svg}");
        assert!(line(&[], true, 300).starts_with("<svg"));
    }

    #[test]
    fn the_daily_series_fills_gaps_and_skips_days_without_questions() {
        let daily = Daily::of(&[day(20_000, 4, 2, 1), day(20_002, 1, 0, 0)]);
        let days: Vec<&str> = daily.per_day.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(days, ["2024-10-04", "2024-10-05", "2024-10-06"]);
        assert_eq!(daily.per_day.iter().map(|p| p.1).collect::<Vec<_>>(), [4.0, 0.0, 1.0]);
        assert_eq!(daily.answered_share, vec![("2024-10-04".to_string(), 50.0)]);
        let long: Vec<DayCount> = (0..500).map(|d| day(d, 1, 1, 1)).collect();
        let daily = Daily::of(&long);
        assert_eq!(daily.per_day.len(), 400, "the last 400 days");
        assert_eq!(daily.per_day[0].0, crate::dates::day_of(100 * 86_400));
        assert!(Daily::of(&[]).is_empty());
    }

    /// The RGB pixels of a PNG, read back with the `png` crate's decoder.
    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(info.buffer_size());
        (info, pixels)
    }

    #[test]
    fn the_daily_png_is_a_png_of_its_size_with_both_lines_and_its_titles() {
        let daily = Daily::of(&[day(20_000, 4, 2, 1), day(20_001, 9, 3, 3), day(20_002, 1, 1, 0)]);
        let bytes = daily_png(&daily, ("Inquiries per day", "Share answered")).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let (info, pixels) = decode(&bytes);
        assert_eq!((info.width, info.height), PNG_SIZE);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let count = |rows: std::ops::Range<u32>, want: &dyn Fn(&[u8]) -> bool| {
            rows.flat_map(|y| (0..PNG_SIZE.0).map(move |x| (x, y)))
                .filter(|(x, y)| want(&pixels[((y * PNG_SIZE.0 + x) * 3) as usize..][..3]))
                .count()
        };
        let half = PNG_SIZE.1 / 2;
        let blue = |p: &[u8]| p == [BLUE_INK.0, BLUE_INK.1, BLUE_INK.2];
        let green = |p: &[u8]| p == [GREEN_INK.0, GREEN_INK.1, GREEN_INK.2];
        assert!(count(0..half, &blue) > 100 && count(half..PNG_SIZE.1, &blue) == 0, "the inquiries line is on top");
        assert!(count(half..PNG_SIZE.1, &green) > 100 && count(0..half, &green) == 0, "the share line is below");
        // The titles are drawn with the embedded font: dark pixels in the caption band of each half.
        let dark = |p: &[u8]| p.iter().all(|c| *c < 100);
        assert!(count(0..34, &dark) > 200, "a title on top");
        assert!(count(half..half + 34, &dark) > 200, "a title below");
        // Without titles those bands hold far less ink: what is there is the titles' text.
        let (_, plain) = decode(&daily_png(&daily, ("", "")).unwrap());
        let dark_in = |pixels: &[u8], rows: std::ops::Range<u32>| {
            rows.flat_map(|y| (0..PNG_SIZE.0).map(move |x| (x, y)))
                .filter(|(x, y)| dark(&pixels[((y * PNG_SIZE.0 + x) * 3) as usize..][..3]))
                .count()
        };
        assert!(dark_in(&pixels, 0..34) > dark_in(&plain, 0..34) + 200);
    }
}
