//! B1's PNG plots (plotters, bitmap backend): latency and throughput against offered load, one
//! line per system and link.

use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::cli::B1Args;
use super::series::Series;
use super::stats::Summary;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Latency (p50 and p90, clipped at three times the SLO) against offered load.
pub fn latency(series: &[Series], args: &B1Args, path: &Path) -> anyhow::Result<()> {
    register_font(&args.font)?;
    let root = BitMapBackend::new(path, (1500, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(750);
    let cap = 3.0 * args.slo_p90_s;
    let p50 = Panel { title: "p50 latency", y_desc: "seconds", y_max: cap, slo: None };
    let p90 =
        Panel { title: "p90 latency (SLO dashed)", y_desc: "seconds", y_max: cap, slo: Some(args.slo_p90_s) };
    draw(&left, series, &p50, |s| s.p50)?;
    draw(&right, series, &p90, |s| s.p90)?;
    root.present().map_err(plot_error)
}

/// Completed requests per second against offered load.
pub fn throughput(series: &[Series], args: &B1Args, path: &Path) -> anyhow::Result<()> {
    register_font(&args.font)?;
    let root = BitMapBackend::new(path, (900, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let top = args.rates.iter().copied().fold(1.0, f64::max) * 1.05;
    let panel = Panel { title: "throughput", y_desc: "completed requests/s", y_max: top, slo: None };
    draw(&root, series, &panel, |s| s.throughput)?;
    root.present().map_err(plot_error)
}

struct Panel {
    title: &'static str,
    y_desc: &'static str,
    y_max: f64,
    slo: Option<f64>,
}

fn draw(area: &Area, series: &[Series], panel: &Panel, value: fn(&Summary) -> f64) -> anyhow::Result<()> {
    let x_max = series.iter().flat_map(|s| s.points.iter().map(|(rate, _)| *rate)).fold(1.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..panel.y_max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("offered load (requests/s)")
        .y_desc(panel.y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(plot_error)?;
    for (index, one) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64)> =
            one.points.iter().map(|(rate, s)| (*rate, value(s).min(panel.y_max))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
            .map_err(plot_error)?
            .label(one.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 5, color.filled())))
            .map_err(plot_error)?;
    }
    if let Some(slo) = panel.slo {
        let dashes = DashedLineSeries::new(vec![(0.0, slo), (x_max, slo)], 10, 6, BLACK.stroke_width(2));
        chart.draw_series(dashes).map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 17))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("plotting failed: {error}")
}

/// Gives plotters the font for "sans-serif" (the bitmap backend has none built in).
fn register_font(path: &Path) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("cannot read the plot font {}: {e}", path.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{} is not a usable TrueType font", path.display()))
}
