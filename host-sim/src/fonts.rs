//! Fonts for the charts.
//!
//! plotters measures text to lay a chart out. With its `ab_glyph` feature (which
//! PNG needs to draw text) every measurement needs a registered font, so:
//!
//! - **SVG** registers a built-in, metrics-only font (one glyph, every character
//!   0.6 em wide, DejaVu Sans' ascent and descent) as `sans-serif`. The SVG
//!   names the family `sans-serif` and the viewer draws the text, so no system
//!   font is needed and the output is the same on every machine.
//! - **PNG** rasterises text itself and needs a real TrueType font: the file
//!   named by `HOST_SIM_FONT`, else the first of [`PNG_FONT_CANDIDATES`] that
//!   exists (Debian's `fonts-dejavu-core` provides the first).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

/// Family the SVG charts use (metrics-only font; the viewer draws the text).
pub(crate) const SVG_FAMILY: &str = "sans-serif";
/// Family the PNG charts use (a real font from the system).
pub(crate) const PNG_FAMILY: &str = "host-sim-sans";
/// Environment variable naming a TTF for PNG charts.
pub const FONT_ENV: &str = "HOST_SIM_FONT";

/// Where PNG charts look for a font when `HOST_SIM_FONT` is not set.
pub const PNG_FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The font PNG charts would use, if any: `HOST_SIM_FONT`, else the first
/// existing [`PNG_FONT_CANDIDATES`] entry.
#[must_use]
pub fn png_font_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(FONT_ENV) {
        return Some(PathBuf::from(p));
    }
    PNG_FONT_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
}

static SVG_FONT: OnceLock<Result<(), String>> = OnceLock::new();
static PNG_FONT: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the SVG metrics font (once per process).
pub(crate) fn ensure_svg_font() -> anyhow::Result<()> {
    SVG_FONT
        .get_or_init(|| {
            let bytes: &'static [u8] = Box::leak(metrics_font().into_boxed_slice());
            register_font(SVG_FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| "the built-in metrics font was rejected".to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Loads and registers the PNG font (once per process).
pub(crate) fn ensure_png_font() -> anyhow::Result<()> {
    PNG_FONT
        .get_or_init(|| {
            let Some(path) = png_font_path() else {
                return Err(format!(
                    "PNG charts need a TrueType font and none was found (install Debian's \
                     fonts-dejavu-core, set {FONT_ENV}=/path/to/font.ttf, or use --format svg)"
                ));
            };
            let data = std::fs::read(&path)
                .map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
            let bytes: &'static [u8] = Box::leak(data.into_boxed_slice());
            register_font(PNG_FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A minimal TrueType font: tables `head`, `hhea`, `hmtx`, `maxp` and a single
/// glyph 600 units wide (of 1000 per em), ascent 928, descent -236. Every
/// character maps to that glyph, which is all plotters needs to measure text.
fn metrics_font() -> Vec<u8> {
    fn be16(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_be_bytes());
    }
    fn be32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_be_bytes());
    }
    let mut head = Vec::new();
    be32(&mut head, 0x0001_0000); // version
    be32(&mut head, 0x0001_0000); // fontRevision
    be32(&mut head, 0); // checksumAdjustment
    be32(&mut head, 0x5F0F_3CF5); // magicNumber
    be16(&mut head, 0); // flags
    be16(&mut head, 1000); // unitsPerEm
    head.extend_from_slice(&[0; 16]); // created, modified
    for x in [0u16, (-236i16) as u16, 600, 928] {
        be16(&mut head, x); // xMin, yMin, xMax, yMax
    }
    be16(&mut head, 0); // macStyle
    be16(&mut head, 8); // lowestRecPPEM
    be16(&mut head, 2); // fontDirectionHint
    be16(&mut head, 0); // indexToLocFormat
    be16(&mut head, 0); // glyphDataFormat
    let mut hhea = Vec::new();
    be32(&mut hhea, 0x0001_0000);
    be16(&mut hhea, 928); // ascender
    be16(&mut hhea, (-236i16) as u16); // descender
    be16(&mut hhea, 0); // lineGap
    be16(&mut hhea, 600); // advanceWidthMax
    hhea.extend_from_slice(&[0; 6]); // minLSB, minRSB, xMaxExtent
    be16(&mut hhea, 1); // caretSlopeRise
    hhea.extend_from_slice(&[0; 4 + 8 + 2]); // caretSlopeRun, caretOffset, reserved, metricDataFormat
    be16(&mut hhea, 1); // numberOfHMetrics
    let mut hmtx = Vec::new();
    be16(&mut hmtx, 600);
    be16(&mut hmtx, 0);
    let mut maxp = Vec::new();
    be32(&mut maxp, 0x0000_5000);
    be16(&mut maxp, 1); // numGlyphs
    let tables: [(&[u8; 4], Vec<u8>); 4] = [
        (b"head", head),
        (b"hhea", hhea),
        (b"hmtx", hmtx),
        (b"maxp", maxp),
    ];
    let mut font = Vec::new();
    be32(&mut font, 0x0001_0000);
    be16(&mut font, tables.len() as u16);
    font.extend_from_slice(&[0, 64, 0, 2, 0, 0]); // searchRange, entrySelector, rangeShift
    let mut offset = 12 + 16 * tables.len();
    let mut body = Vec::new();
    for (tag, data) in &tables {
        font.extend_from_slice(*tag);
        be32(&mut font, 0); // checksum (not checked by readers)
        be32(&mut font, offset as u32);
        be32(&mut font, data.len() as u32);
        body.extend_from_slice(data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        offset = 12 + 16 * tables.len() + body.len();
    }
    font.extend_from_slice(&body);
    font
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_font_measures_text() {
        ensure_svg_font().unwrap();
        let font = plotters::style::FontDesc::new(
            plotters::style::FontFamily::Name(SVG_FAMILY),
            20.0,
            FontStyle::Normal,
        );
        let (w, h) = font.box_size("hello").unwrap();
        // 5 characters x 0.6 em x 20 px x 1000 / (928 + 236).
        assert_eq!(w, 51);
        assert!(h > 10 && h < 20, "{h}");
    }
}
