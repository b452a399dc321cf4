//! QR codes of links' public URLs (spec, "Links at scale"): SVG from the `qrcode` crate's
//! renderer, PNG drawn from its module matrix and encoded by the `png` crate. Both keep the
//! four-module quiet zone scanners need.

use qrcode::render::svg;
use qrcode::{Color, QrCode};

/// The modules of quiet zone on each side.
const QUIET_ZONE: usize = 4;

/// A link URL as an SVG document about `size` pixels square.
pub fn svg(url: &str, size: u32) -> Result<String, String> {
    let code = QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(size, size)
        .max_dimensions(size, size)
        .quiet_zone(true)
        .build())
}

/// A link URL as a grey-scale PNG of whole modules, at most `size` pixels square (at least
/// one pixel per module).
pub fn png(url: &str, size: u32) -> Result<Vec<u8>, String> {
    let code = QrCode::new(url.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let across = modules + 2 * QUIET_ZONE;
    let scale = (size as usize / across).max(1);
    let side = across * scale;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == Color::Dark {
                for dy in 0..scale {
                    let row = (y + QUIET_ZONE) * scale + dy;
                    let start = row * side + (x + QUIET_ZONE) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_formats_have_the_asked_size_at_most() {
        // Whole modules: as many pixels per module as fit in 256 (29 modules and a quiet
        // zone of 4 on each side: 37 modules of 6 pixels).
        let svg = super::svg("https://links.example/l/abcd1234", 256).unwrap();
        assert!(svg.contains(r#"width="222""#), "{svg}");
        let png = super::png("https://links.example/l/abcd1234", 256).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert!((200..=256).contains(&width), "{width}");
    }
}
