//! The charts, drawn with plotters to SVG (default) or PNG.
//!
//! Each figure is a function drawing on a [`DrawingArea`] of any backend;
//! `render` picks the backend for the format, draws, and calls `present()`
//! so that I/O errors surface.

use std::ops::Range;
use std::path::Path;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::fonts::{PNG_FAMILY, SVG_FAMILY, ensure_png_font, ensure_svg_font};
use crate::scenario::a::AReport;
use crate::scenario::b::BReport;
use crate::scenario::c::CReport;
use crate::scenario::d::DReport;
use crate::sim::{RunResult, TimeSeries};

/// Chart file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Scalable vector graphics: no system font needed.
    Svg,
    /// Bitmap: needs a TrueType font (see [`crate::fonts`]).
    Png,
}

impl Format {
    /// The file extension: `"svg"` or `"png"`.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// plotters' errors are generic over the backend; flatten them to messages.
trait Ctx<T> {
    fn ctx(self) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("{e}"))
    }
}

/// A figure: its size and how to draw it on any backend.
pub(crate) trait Figure {
    /// Pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root` with text in `font`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()>;
}

/// Draws `fig` into `path` as `format` and presents it.
///
/// # Errors
/// No font for PNG, a drawing error, or an I/O error writing the file.
pub(crate) fn render(fig: &impl Figure, path: &Path, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Svg => {
            ensure_svg_font()?;
            let root = SVGBackend::new(path, fig.size()).into_drawing_area();
            fig.draw(&root, SVG_FAMILY)?;
            root.present().ctx()
        }
        Format::Png => {
            ensure_png_font()?;
            let root = BitMapBackend::new(path, fig.size()).into_drawing_area();
            fig.draw(&root, PNG_FAMILY)?;
            root.present().ctx()
        }
    }
}

// ---------------------------------------------------------------- helpers

const TABLEAU: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The i-th series color.
fn color(i: usize) -> RGBColor {
    TABLEAU[i % TABLEAU.len()]
}

/// Stable colors per strategy, so a strategy looks the same in every chart.
fn strategy_color(name: &str) -> RGBColor {
    match name {
        "ring" => TABLEAU[0],
        "round_robin" => TABLEAU[1],
        "modulo" => TABLEAU[3],
        "maglev" => TABLEAU[2],
        "jump" => TABLEAU[4],
        "rendezvous" => TABLEAU[5],
        "bounded" => TABLEAU[6],
        _ => TABLEAU[7],
    }
}

fn style(c: impl Color, width: u32) -> ShapeStyle {
    ShapeStyle {
        color: c.to_rgba(),
        filled: false,
        stroke_width: width,
    }
}

/// Axis tick text: integers without decimals, others with up to 2.
fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One line of a line chart.
struct Line {
    label: Option<String>,
    style: ShapeStyle,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A linear line chart panel.
struct Panel<'a> {
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    x: Range<f64>,
    y: Range<f64>,
    lines: Vec<Line>,
    /// Vertical markers: (x, color).
    vlines: Vec<(f64, RGBColor)>,
    /// A shaded horizontal band (y from, y to).
    band: Option<(f64, f64, RGBColor)>,
    legend: SeriesLabelPosition,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    font: &str,
    p: &Panel<'_>,
) -> anyhow::Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (font, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(p.x.clone(), p.y.clone())
        .ctx()?;
    chart
        .configure_mesh()
        .x_desc(p.x_desc)
        .y_desc(p.y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((font, 13))
        .axis_desc_style((font, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .ctx()?;
    if let Some((lo, hi, c)) = p.band {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(p.x.start, lo), (p.x.end, hi)],
                c.mix(0.15).filled(),
            )))
            .ctx()?;
    }
    for &(x, c) in &p.vlines {
        chart
            .draw_series(DashedLineSeries::new(
                [(x, p.y.start), (x, p.y.end)],
                6,
                4,
                style(c, 1),
            ))
            .ctx()?;
    }
    let mut labelled = false;
    for l in &p.lines {
        let st = l.style;
        let anno = if l.dashed {
            chart
                .draw_series(DashedLineSeries::new(l.points.iter().copied(), 8, 5, st))
                .ctx()?
        } else {
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), st))
                .ctx()?
        };
        if let Some(label) = &l.label {
            labelled = true;
            anno.label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], st));
        }
    }
    if labelled {
        chart
            .configure_series_labels()
            .label_font((font, 13))
            .position(p.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .ctx()?;
    }
    Ok(())
}

/// A grouped bar chart panel: one group of bars per category.
struct Bars<'a> {
    title: String,
    y_desc: &'a str,
    categories: Vec<String>,
    /// (label, color, one value per category).
    groups: Vec<(String, RGBColor, Vec<f64>)>,
    /// A dashed reference line (e.g. the mean), with its label.
    reference: Option<(f64, String)>,
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    font: &str,
    b: &Bars<'_>,
) -> anyhow::Result<()> {
    let n = b.categories.len().max(1);
    let top = b
        .groups
        .iter()
        .flat_map(|g| g.2.iter().copied())
        .chain(b.reference.as_ref().map(|r| r.0))
        .fold(0.0, f64::max);
    let y_max = if top > 0.0 { top * 1.15 } else { 1.0 };
    // Categories sit at the integers 0..n, so the axis' integer key points label them.
    let x = -0.5..n as f64 - 0.5;
    let cats = b.categories.clone();
    let mut chart = ChartBuilder::on(area)
        .caption(&b.title, (font, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x.clone(), 0.0..y_max)
        .ctx()?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(b.y_desc)
        .y_label_formatter(&tick)
        .label_style((font, 13))
        .axis_desc_style((font, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .ctx()?;
    let g = b.groups.len().max(1) as f64;
    let width = 0.8 / g;
    for (gi, (label, c, values)) in b.groups.iter().enumerate() {
        let c = *c;
        let x0 = -0.4 + gi as f64 * width;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let l = i as f64 + x0;
                Rectangle::new([(l, 0.0), (l + width * 0.92, v)], c.filled())
            }))
            .ctx()?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    if let Some((v, label)) = &b.reference {
        let st = style(BLACK, 1);
        chart
            .draw_series(DashedLineSeries::new(
                [(x.start, *v), (x.end, *v)],
                6,
                4,
                st,
            ))
            .ctx()?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], st));
    }
    chart
        .configure_series_labels()
        .label_font((font, 13))
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .ctx()?;
    Ok(())
}

fn title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    font: &str,
    text: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).ctx()?;
    root.titled(text, (font, 22)).ctx()
}

/// Aggregate hit rate (%) and datastore reads per second of each window.
type Points = Vec<(f64, f64)>;

fn aggregate_points(series: &TimeSeries) -> (Points, Points) {
    let secs = series.window_us() as f64 / 1e6;
    let mut hit = Vec::new();
    let mut reads = Vec::new();
    for w in 0..series.windows() {
        let t = series.total(w);
        let mid = series.start_s(w) + secs / 2.0;
        if t.lookups() > 0 {
            hit.push((mid, 100.0 * t.hit_rate()));
        }
        reads.push((mid, f64::from(t.misses) / secs));
    }
    (hit, reads)
}

fn server_points(series: &TimeSeries, s: usize) -> Vec<(f64, f64)> {
    let secs = series.window_us() as f64 / 1e6;
    (0..series.windows())
        .filter_map(|w| {
            let c = series.get(w, s);
            (c.lookups() > 0).then(|| (series.start_s(w) + secs / 2.0, 100.0 * c.hit_rate()))
        })
        .collect()
}

fn max_y(lines: &[Line]) -> f64 {
    let m = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    if m > 0.0 { m * 1.12 } else { 1.0 }
}

/// Hit rate (top) and datastore reads (bottom) over time for several runs.
fn time_figure<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    font: &str,
    heading: &str,
    runs: &[&RunResult],
    controls: &[&RunResult],
    per_server: bool,
    vlines: Vec<(f64, RGBColor)>,
) -> anyhow::Result<()> {
    let body = title(root, font, heading)?;
    let panels = body.split_evenly((2, 1));
    let end = runs
        .iter()
        .map(|r| r.series.start_s(r.series.windows()))
        .fold(1.0, f64::max);
    let mut hit_lines = Vec::new();
    let mut read_lines = Vec::new();
    for r in runs {
        let name = r.strategy.name();
        let c = strategy_color(name);
        if per_server {
            for s in 0..r.series.servers() {
                hit_lines.push(Line {
                    label: None,
                    style: style(c.mix(0.3), 1),
                    dashed: false,
                    points: server_points(&r.series, s),
                });
            }
        }
        let (hit, reads) = aggregate_points(&r.series);
        hit_lines.push(Line {
            label: Some(format!("{name} (all servers)")),
            style: style(c, 3),
            dashed: false,
            points: hit,
        });
        read_lines.push(Line {
            label: Some(name.to_string()),
            style: style(c, 2),
            dashed: false,
            points: reads,
        });
    }
    for r in controls {
        let name = r.strategy.name();
        let c = strategy_color(name).mix(0.7);
        let (hit, reads) = aggregate_points(&r.series);
        hit_lines.push(Line {
            label: Some(format!("{name}, no change (control)")),
            style: style(c, 1),
            dashed: true,
            points: hit,
        });
        read_lines.push(Line {
            label: Some(format!("{name}, no change")),
            style: style(c, 1),
            dashed: true,
            points: reads,
        });
    }
    let y_reads = max_y(&read_lines);
    let hit_title = if per_server {
        "Cache hit rate per 1 s window (thin: each server)"
    } else {
        "Cache hit rate per window"
    };
    draw_panel(
        &panels[0],
        font,
        &Panel {
            title: hit_title.into(),
            x_desc: "time (s)",
            y_desc: "hit rate (%)",
            x: 0.0..end,
            y: 0.0..100.0,
            lines: hit_lines,
            vlines: vlines.clone(),
            band: None,
            legend: SeriesLabelPosition::LowerRight,
        },
    )?;
    draw_panel(
        &panels[1],
        font,
        &Panel {
            title: "Datastore reads (cache misses)".into(),
            x_desc: "time (s)",
            y_desc: "reads per second",
            x: 0.0..end,
            y: 0.0..y_reads,
            lines: read_lines,
            vlines,
            band: None,
            legend: SeriesLabelPosition::UpperRight,
        },
    )
}

// ---------------------------------------------------------------- figures

/// A: hit rate and datastore load over time, every strategy.
pub(crate) struct AHitRate<'a>(pub(crate) &'a AReport);

impl Figure for AHitRate<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 820)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let runs: Vec<&RunResult> = self.0.runs.iter().collect();
        let names: Vec<&str> = runs.iter().map(|r| r.strategy.name()).collect();
        time_figure(
            root,
            font,
            &format!("Scenario A: {}", names.join(" vs ")),
            &runs,
            &[],
            true,
            Vec::new(),
        )
    }
}

/// A: distinct customers per server, every strategy.
pub(crate) struct AKeys<'a>(pub(crate) &'a AReport);

impl Figure for AKeys<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 520)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let body = title(
            root,
            font,
            "Scenario A: distinct customers seen by each server",
        )?;
        let servers = self
            .0
            .runs
            .iter()
            .map(|r| r.servers.len())
            .max()
            .unwrap_or(0);
        let categories = (0..servers).map(crate::sim::server_name).collect();
        let groups = self
            .0
            .runs
            .iter()
            .map(|r| {
                let name = r.strategy.name();
                (
                    name.to_string(),
                    strategy_color(name),
                    r.servers
                        .iter()
                        .map(|s| s.distinct_keys.unwrap_or(0) as f64)
                        .collect(),
                )
            })
            .collect();
        draw_bars(
            &body,
            font,
            &Bars {
                title: "a key-affine strategy splits the customers; round robin sends each to all"
                    .into(),
                y_desc: "distinct customers",
                categories,
                groups,
                reference: None,
            },
        )
    }
}

/// A: hit rate against cache capacity.
pub(crate) struct ASweep<'a>(pub(crate) &'a AReport);

impl Figure for ASweep<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 560)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let sw = &self.0.sweep;
        let body = title(root, font, "Scenario A: hit rate against cache capacity")?;
        let caps: Vec<f64> = sw.capacities.iter().map(|&c| c as f64).collect();
        let x_max = caps.iter().copied().fold(1.0, f64::max) * 1.05;
        let mut lines: Vec<Line> = sw
            .hit_rate
            .iter()
            .map(|(name, hs)| Line {
                label: Some(name.clone()),
                style: style(strategy_color(name), 3),
                dashed: false,
                points: caps.iter().zip(hs).map(|(&c, &h)| (c, 100.0 * h)).collect(),
            })
            .collect();
        lines.push(Line {
            label: Some("uniform LRU estimate min(1, C x servers / customers)".into()),
            style: style(RGBColor(90, 90, 90), 1),
            dashed: true,
            points: caps
                .iter()
                .zip(&sw.lru_estimate)
                .map(|(&c, &h)| (c, 100.0 * h))
                .collect(),
        });
        draw_panel(
            &body,
            font,
            &Panel {
                title: "shaded: the 80–90% the specification expects".into(),
                x_desc: "cache capacity per server (entries)",
                y_desc: "hit rate (%)",
                x: 0.0..x_max,
                y: 0.0..100.0,
                lines,
                vlines: Vec::new(),
                band: Some((80.0, 90.0, RGBColor(44, 160, 44))),
                legend: SeriesLabelPosition::LowerRight,
            },
        )
    }
}

/// B: hit rate and datastore reads across the fleet change.
pub(crate) struct BFleetChange<'a>(pub(crate) &'a BReport);

impl Figure for BFleetChange<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 820)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let b = self.0;
        let runs: Vec<&RunResult> = b.runs.iter().collect();
        let controls: Vec<&RunResult> = b.controls.iter().collect();
        let verb = match b.change.kind {
            crate::scenario::ChangeArg::Add => "added",
            crate::scenario::ChangeArg::Remove => "removed",
        };
        let mut vlines = vec![(b.change.at_s, BLACK)];
        for r in &runs {
            let name = r.strategy.name();
            if let Some(rec) = b.strategies.get(name).and_then(|m| m.recovery_s) {
                if rec > 0.0 {
                    vlines.push((b.change.at_s + rec, strategy_color(name)));
                }
            }
        }
        time_figure(
            root,
            font,
            &format!(
                "Scenario B: {} {verb} at {} s (dashed: change, then recovery per strategy)",
                b.change.server, b.change.at_s
            ),
            &runs,
            &controls,
            false,
            vlines,
        )
    }
}

/// C: coefficient of variation against vnodes (log x).
pub(crate) struct CCov<'a>(pub(crate) &'a CReport);

impl Figure for CCov<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 560)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let c = self.0;
        let body = title(
            root,
            font,
            &format!(
                "Scenario C: balance of {} keys over {} backends",
                c.keys, c.backends
            ),
        )?;
        let v_max = c
            .rows
            .iter()
            .map(|r| f64::from(r.vnodes))
            .fold(1.0, f64::max);
        let v_min = c
            .rows
            .iter()
            .map(|r| f64::from(r.vnodes))
            .fold(v_max, f64::min);
        let y_max = c
            .rows
            .iter()
            .flat_map(|r| [r.cov_max, r.server_fleet_cov, r.cov_estimate])
            .fold(0.0, f64::max)
            * 1.1;
        let y_max = if y_max > 0.0 { y_max } else { 1.0 };
        let mut chart = ChartBuilder::on(&body)
            .caption(
                format!(
                    "mean over {} trials, each with its own keys and fleet names",
                    c.trials
                ),
                (font, 16),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d((v_min * 0.8..v_max * 1.25).log_scale(), 0.0..y_max)
            .ctx()?;
        chart
            .configure_mesh()
            .x_desc("virtual nodes per backend (log scale)")
            .y_desc("coefficient of variation of keys per backend")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((font, 13))
            .axis_desc_style((font, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .ctx()?;
        let pts = |f: &dyn Fn(&crate::scenario::c::CRow) -> f64| -> Vec<(f64, f64)> {
            c.rows.iter().map(|r| (f64::from(r.vnodes), f(r))).collect()
        };
        // Range over trials, as a shaded polygon.
        let mut band = pts(&|r| r.cov_max);
        band.extend(pts(&|r| r.cov_min).into_iter().rev());
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                TABLEAU[0].mix(0.15).filled(),
            )))
            .ctx()?
            .label("min–max over trials")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 22, y + 5)], TABLEAU[0].mix(0.15).filled())
            });
        let mean = style(TABLEAU[0], 3);
        chart
            .draw_series(LineSeries::new(pts(&|r| r.cov), mean))
            .ctx()?
            .label("mean over trials")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], mean));
        chart
            .draw_series(
                pts(&|r| r.cov)
                    .into_iter()
                    .map(|p| Circle::new(p, 4, TABLEAU[0].filled())),
            )
            .ctx()?;
        let plain = style(TABLEAU[1], 2);
        chart
            .draw_series(LineSeries::new(pts(&|r| r.server_fleet_cov), plain))
            .ctx()?
            .label(format!(
                "server-0..server-{} alone",
                c.backends.saturating_sub(1)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], plain));
        let est = style(RGBColor(90, 90, 90), 1);
        chart
            .draw_series(DashedLineSeries::new(pts(&|r| r.cov_estimate), 8, 5, est))
            .ctx()?
            .label("model: sqrt((n-1)(K+nv) / (K(1+nv)))")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], est));
        chart
            .configure_series_labels()
            .label_font((font, 13))
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .ctx()?;
        Ok(())
    }
}

/// C: keys per backend of the plain fleet at a few vnode counts.
pub(crate) struct CDistribution<'a>(pub(crate) &'a CReport);

impl Figure for CDistribution<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 520)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let c = self.0;
        let body = title(root, font, "Scenario C: keys per backend")?;
        let categories = c
            .bars
            .first()
            .map(|b| b.backends.clone())
            .unwrap_or_default();
        let groups = c
            .bars
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    format!("{} vnodes", b.vnodes),
                    color(i + 2),
                    b.keys.iter().map(|&k| k as f64).collect(),
                )
            })
            .collect();
        draw_bars(
            &body,
            font,
            &Bars {
                title: format!(
                    "customer ids 0..{} on server-0..server-{}",
                    c.keys.saturating_sub(1),
                    c.backends.saturating_sub(1)
                ),
                y_desc: "keys",
                categories,
                groups,
                reference: Some((
                    c.keys as f64 / c.backends.max(1) as f64,
                    "even share".into(),
                )),
            },
        )
    }
}

/// D: per-server requests, hit rate and datastore reads, uniform vs Zipf.
pub(crate) struct DLoad<'a>(pub(crate) &'a DReport);

impl Figure for DLoad<'_> {
    fn size(&self) -> (u32, u32) {
        (1500, 540)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let d = self.0;
        let body = title(
            root,
            font,
            &format!(
                "Scenario D: uniform vs Zipf (s = {}) customers on the ring",
                d.zipf_s
            ),
        )?;
        let panels = body.split_evenly((1, 3));
        let servers = d
            .runs
            .iter()
            .map(|(_, r)| r.servers.len())
            .max()
            .unwrap_or(0);
        let categories: Vec<String> = (0..servers).map(crate::sim::server_name).collect();
        let name = |dist: crate::sim::IdDistribution| match dist {
            crate::sim::IdDistribution::Uniform => "uniform",
            crate::sim::IdDistribution::Zipf => "zipf",
        };
        let metric = |f: &dyn Fn(&crate::sim::ServerSummary) -> f64| {
            d.runs
                .iter()
                .enumerate()
                .map(|(i, (dist, r))| {
                    (
                        name(*dist).to_string(),
                        color(if i == 0 { 0 } else { 3 }),
                        r.servers.iter().map(f).collect::<Vec<f64>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        draw_bars(
            &panels[0],
            font,
            &Bars {
                title: "requests per server".into(),
                y_desc: "requests",
                categories: categories.clone(),
                groups: metric(&|s| s.requests as f64),
                reference: None,
            },
        )?;
        draw_bars(
            &panels[1],
            font,
            &Bars {
                title: "cache hit rate per server".into(),
                y_desc: "hit rate (%)",
                categories: categories.clone(),
                groups: metric(&|s| 100.0 * s.hit_rate()),
                reference: None,
            },
        )?;
        draw_bars(
            &panels[2],
            font,
            &Bars {
                title: "datastore reads per server".into(),
                y_desc: "reads",
                categories,
                groups: metric(&|s| s.misses as f64),
                reference: None,
            },
        )
    }
}

/// `host-sim lb-compare`: per algorithm, the client's p50 and p99, the error
/// rate, and each backend's share of the answers.
pub(crate) struct LbCompareChart<'a>(pub(crate) &'a crate::lbcompare::Report);

impl Figure for LbCompareChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1500, 1300)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        font: &str,
    ) -> anyhow::Result<()> {
        let r = self.0;
        let body = title(
            root,
            font,
            &format!(
                "Load-balancing algorithms, live: {} requests each, {} connections ({})",
                r.requests, r.concurrency, r.machine
            ),
        )?;
        let panels = body.split_evenly((3, 1));
        let categories: Vec<String> = r.runs.iter().map(|x| x.algorithm.to_string()).collect();
        let slow = r.backends.iter().find(|b| b.extra_ms > 0.0);
        let failing = r.backends.iter().find(|b| b.fail_share > 0.0 || b.refuse);
        draw_bars(
            &panels[0],
            font,
            &Bars {
                title: "latency seen by the client".into(),
                y_desc: "ms",
                categories: categories.clone(),
                groups: vec![
                    (
                        "p50".into(),
                        color(0),
                        r.runs.iter().map(|x| x.p50_ms).collect(),
                    ),
                    (
                        "p99".into(),
                        color(1),
                        r.runs.iter().map(|x| x.p99_ms).collect(),
                    ),
                ],
                reference: None,
            },
        )?;
        draw_bars(
            &panels[1],
            font,
            &Bars {
                title: format!(
                    "error rate{}",
                    failing.map_or(String::new(), |f| if f.refuse {
                        format!(" ({} refuses connections)", f.name)
                    } else {
                        format!(" ({} answers 500 to {}%)", f.name, 100.0 * f.fail_share)
                    })
                ),
                y_desc: "errors (%)",
                categories: categories.clone(),
                groups: vec![(
                    "errors".into(),
                    color(3),
                    r.runs.iter().map(|x| 100.0 * x.error_rate).collect(),
                )],
                reference: None,
            },
        )?;
        let groups = r
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let c = if Some(b) == slow {
                    color(1)
                } else if Some(b) == failing {
                    color(3)
                } else {
                    TABLEAU[[0, 2, 4, 9, 5, 6, 8][i % 7]]
                };
                (
                    b.name.clone(),
                    c,
                    r.runs.iter().map(|x| 100.0 * x.share_of(&b.name)).collect(),
                )
            })
            .collect();
        draw_bars(
            &panels[2],
            font,
            &Bars {
                title: format!(
                    "share of the answers per backend{}",
                    slow.map_or(String::new(), |s| format!(
                        " ({} is {} ms slower)",
                        s.name, s.extra_ms
                    ))
                ),
                y_desc: "share (%)",
                categories,
                groups,
                reference: Some((100.0 / r.backends.len().max(1) as f64, "even share".into())),
            },
        )
    }
}
