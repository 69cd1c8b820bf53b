//! Source format from magic bytes (never from `Content-Type` or the URL).
//!
//! Pure and cheap: safe to call on the event loop.

use imgforge_imgproxy::Format;

/// Recognises the image formats imgproxy knows by their first bytes.
///
/// Returns `None` for anything else (HTML error pages, text, PDF, empty
/// bodies, …). A `Some` is only a claim: the decoder may still reject the
/// data. Which recognised formats may be decoded is
/// [`decodable`]'s business.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let b = bytes;
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some(Format::Webp);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(Format::Gif);
    }
    if let Some(f) = sniff_isobmff(b) {
        return Some(f);
    }
    if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        return Some(Format::Tiff);
    }
    if b.starts_with(&[0xFF, 0x0A]) || b.starts_with(b"\0\0\0\x0CJXL \r\n\x87\n") {
        return Some(Format::Jxl);
    }
    if b.starts_with(b"BM") && b.len() >= 26 {
        return Some(Format::Bmp);
    }
    if b.starts_with(&[0, 0, 1, 0]) && b.len() >= 22 {
        return Some(Format::Ico);
    }
    if looks_like_svg(b) {
        return Some(Format::Svg);
    }
    None
}

/// Formats the engine decodes. SVG (script, external references), JPEG XL,
/// BMP and ICO are refused: their libvips loaders are blocked.
pub fn decodable(format: Format) -> bool {
    matches!(
        format,
        Format::Jpeg
            | Format::Png
            | Format::Webp
            | Format::Gif
            | Format::Avif
            | Format::Heic
            | Format::Tiff
    )
}

/// HEIF family: an `ftyp` box whose major or compatible brands name AVIF or
/// HEIC. AVIF wins when both are listed (AVIF files list `mif1` too).
fn sniff_isobmff(b: &[u8]) -> Option<Format> {
    if b.len() < 16 || &b[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = size.clamp(16, 256).min(b.len());
    let brands = std::iter::once(&b[8..12]).chain(b[16..end].chunks_exact(4));
    let mut heic = false;
    for brand in brands {
        match brand {
            b"avif" | b"avis" => return Some(Format::Avif),
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                heic = true
            }
            _ => {}
        }
    }
    heic.then_some(Format::Heic)
}

/// An XML or `<svg` document within the first KiB (after a BOM and
/// whitespace) that mentions `<svg`.
fn looks_like_svg(b: &[u8]) -> bool {
    let head = &b[..b.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    (head.starts_with(b"<?xml") || head.starts_with(b"<svg") || head.starts_with(b"<!--"))
        && head.windows(4).any(|w| w == b"<svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(Format::Gif));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
        assert_eq!(sniff(b"\xFF\x0A\xFA"), Some(Format::Jxl));
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some(Format::Svg)
        );
    }

    #[test]
    fn heif_brands() {
        let avif = b"\0\0\0\x1CftypavifE\0\0\0avifmif1miaf";
        assert_eq!(sniff(avif), Some(Format::Avif));
        let avif_minor = b"\0\0\0\x1Cftypmif1\0\0\0\0mif1avifmiaf";
        assert_eq!(sniff(avif_minor), Some(Format::Avif));
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert_eq!(sniff(heic), Some(Format::Heic));
        let mp4 = b"\0\0\0\x18ftypisom\0\0\0\0isomiso2";
        assert_eq!(sniff(mp4), None);
    }

    #[test]
    fn not_images() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<!DOCTYPE html><html><body>404</body></html>"), None);
        assert_eq!(sniff(b"hello world"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><rss/>"), None);
    }

    #[test]
    fn decodable_allow_list() {
        assert!(decodable(Format::Jpeg) && decodable(Format::Avif) && decodable(Format::Heic));
        assert!(!decodable(Format::Svg) && !decodable(Format::Jxl) && !decodable(Format::Bmp));
    }
}
