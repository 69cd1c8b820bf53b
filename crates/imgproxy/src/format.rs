//! Image formats and what imgforge can encode.

use std::fmt;

/// Image formats known to the URL API (imgproxy's `imagetype` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Format {
    /// JPEG (`jpeg`, alias `jpg`).
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF (AV1 in HEIF).
    Avif,
    /// GIF.
    Gif,
    /// ICO (not an imgforge output format).
    Ico,
    /// SVG (not an imgforge output format).
    Svg,
    /// HEIC (not an imgforge output format).
    Heic,
    /// BMP (not an imgforge output format).
    Bmp,
    /// TIFF (not an imgforge output format).
    Tiff,
    /// JPEG XL (not an imgforge output format).
    Jxl,
}

impl Format {
    /// Every format, in canonical order.
    pub const ALL: [Format; 11] = [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Avif,
        Format::Gif,
        Format::Ico,
        Format::Svg,
        Format::Heic,
        Format::Bmp,
        Format::Tiff,
        Format::Jxl,
    ];

    /// Looks a format up by its imgproxy name (case-sensitive, as imgproxy).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            "avif" => Format::Avif,
            "gif" => Format::Gif,
            "ico" => Format::Ico,
            "svg" => Format::Svg,
            "heic" => Format::Heic,
            "bmp" => Format::Bmp,
            "tiff" => Format::Tiff,
            "jxl" => Format::Jxl,
            _ => return None,
        })
    }

    /// Canonical name (`jpeg`, `png`, …).
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Gif => "gif",
            Format::Ico => "ico",
            Format::Svg => "svg",
            Format::Heic => "heic",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Jxl => "jxl",
        }
    }

    /// File extension without the dot (`jpg` for JPEG).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            other => other.name(),
        }
    }

    /// MIME type for `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Gif => "image/gif",
            Format::Ico => "image/x-icon",
            Format::Svg => "image/svg+xml",
            Format::Heic => "image/heif",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Jxl => "image/jxl",
        }
    }

    /// Whether imgforge can encode this format (libvips 8.14 savers we enable).
    pub fn is_output(self) -> bool {
        matches!(
            self,
            Format::Jpeg | Format::Png | Format::Webp | Format::Avif | Format::Gif
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_names() {
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        assert_eq!(Format::from_name("jpg"), Some(Format::Jpeg));
        assert_eq!(Format::from_name("PNG"), None);
        assert_eq!(Format::Jpeg.extension(), "jpg");
    }
}
