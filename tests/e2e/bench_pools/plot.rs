//! B3's plot (plotters, bitmap backend): time to Ready and the operator's requests at rest
//! against the number of pools, one series per label, pools on a log scale.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Row;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Result<T> = std::result::Result<T, String>;

/// A panel: its title, y axis and the value of a row, if it has one (and whether all its pools
/// were Ready).
struct Panel {
    title: &'static str,
    y_desc: &'static str,
    target: f64,
    value: fn(&Row) -> Option<(f64, bool)>,
}

/// Draws both panels into `path`.
pub fn draw(groups: &[(String, Vec<Row>)], path: &Path) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1500, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(error)?;
    let (left, right) = root.split_horizontally(750);
    let ready = Panel {
        title: "time to all Ready (× = not Ready: time waited)",
        y_desc: "seconds",
        target: 60.0,
        value: |row| Some((row.ready_s.unwrap_or(row.waited_s), row.ready_s.is_some())),
    };
    let rest = Panel {
        title: "operator requests at rest (no Leases)",
        y_desc: "non-watch requests / pool / minute",
        target: 1.0,
        value: |row| Some((row.rest_per_pool_minute()?, row.ready_s.is_some())),
    };
    panel(&left, groups, &ready)?;
    panel(&right, groups, &rest)?;
    root.present().map_err(error)
}

fn panel(area: &Area, groups: &[(String, Vec<Row>)], panel: &Panel) -> Result<()> {
    let rows = || groups.iter().flat_map(|(_, rows)| rows);
    let x_max = rows().map(|row| row.pools as f64).fold(10.0, f64::max) * 2.0;
    let y_max = rows().filter_map(|row| Some((panel.value)(row)?.0)).fold(panel.target, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.5f64..x_max).log_scale().with_key_points(vec![1.0, 10.0, 100.0, 1000.0]),
            0f64..y_max,
        )
        .map_err(error)?;
    chart
        .configure_mesh()
        .x_desc("pools")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(panel.y_desc)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(error)?;
    let target =
        DashedLineSeries::new(vec![(0.5, panel.target), (x_max, panel.target)], 10, 6, BLACK.stroke_width(2));
    chart
        .draw_series(target)
        .map_err(error)?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    for (index, (label, rows)) in groups.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64, bool)> = rows
            .iter()
            .filter_map(|row| {
                let (value, reached) = (panel.value)(row)?;
                Some((row.pools as f64, value, reached))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points.iter().map(|&(x, y, _)| (x, y)), color.stroke_width(3)))
            .map_err(error)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
        let reached = points.iter().filter(|p| p.2).map(|&(x, y, _)| Circle::new((x, y), 6, color.filled()));
        chart.draw_series(reached).map_err(error)?;
        let missed =
            points.iter().filter(|p| !p.2).map(|&(x, y, _)| Cross::new((x, y), 8, color.stroke_width(3)));
        chart.draw_series(missed).map_err(error)?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 17))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(error)
}

fn error(error: impl std::fmt::Display) -> String {
    format!("plotting B3: {error}")
}

/// Gives plotters the font for "sans-serif" (the bitmap backend has none built in): the one of
/// `PICE_BENCH_FONT`, as for B1, or DejaVu Sans.
fn register_font() -> Result<()> {
    let path = std::env::var("PICE_BENCH_FONT")
        .unwrap_or_else(|_| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let bytes = std::fs::read(&path).map_err(|e| format!("reading the plot font {path}: {e}"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path} is not a usable TrueType font"))
}
