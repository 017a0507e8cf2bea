//! B2's PNG plots (plotters, bitmap backend): grouped bars, one group per system.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

/// A bar chart: for each of `groups` (systems) one bar per series (e.g. JSON and SSE).
pub struct Bars<'a> {
    pub title: &'a str,
    pub y_desc: &'a str,
    pub groups: &'a [String],
    /// Series name and one value per group (NaN: no bar).
    pub series: &'a [(String, Vec<f64>)],
}

/// Draws `bars` into the PNG at `path` (the font must be registered; see `register_font`).
pub fn draw(bars: &Bars, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let top =
        bars.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let groups = bars.groups.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(bars.title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..groups, 0f64..(top * 1.15).max(1e-9))
        .map_err(plot_error)?;
    let names = bars.groups.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.groups.len() * 2 + 1)
        .x_label_formatter(&|x| label_at(&names, *x))
        .y_desc(bars.y_desc)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(plot_error)?;
    let width = 0.8 / bars.series.len().max(1) as f64;
    for (index, (name, values)) in bars.series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let rects = values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(group, value)| {
            let left = group as f64 + 0.1 + width * index as f64;
            Rectangle::new([(left, 0.0), (left + width * 0.95, *value)], color.filled())
        });
        chart
            .draw_series(rects)
            .map_err(plot_error)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 17))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// The group name under the middle of its bars (x = index + 0.5), nothing elsewhere.
fn label_at(names: &[String], x: f64) -> String {
    let index = x.floor();
    if (x - index - 0.5).abs() < 0.05 && index >= 0.0 {
        names.get(index as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plotting failed: {error}")
}

/// Gives plotters the font for "sans-serif" (the bitmap backend has none built in).
pub fn register_font(path: &Path) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("cannot read the plot font {}: {e}", path.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_labelled_under_the_middle_of_its_bars_only() {
        let names = ["a".to_owned(), "b".to_owned()];
        assert_eq!(label_at(&names, 1.5), "b");
        assert_eq!(label_at(&names, 1.0), "");
        assert_eq!(label_at(&names, 2.5), "");
    }
}
