//! Argument parsers shared by the options (imgproxy's `parse.go` rules).
//!
//! Numbers follow Go's `strconv` closely enough for real URLs (`+5` is an
//! integer, `.5` a float); non-finite floats (`NaN`, `Inf`) are rejected
//! because nothing downstream can use them and `NaN` breaks equality.

use super::error::UrlError;
use super::options::{Gravity, GravityKind};

/// Rejects more than `max` arguments.
pub(crate) fn max_args(option: &'static str, args: &[&str], max: usize) -> Result<(), UrlError> {
    if args.len() > max {
        Err(UrlError::args(option, args))
    } else {
        Ok(())
    }
}

/// Go's `strconv.ParseBool`; anything else is `false` (imgproxy logs and goes on).
pub(crate) fn parse_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// A single boolean argument.
pub(crate) fn bool_arg(option: &'static str, args: &[&str]) -> Result<bool, UrlError> {
    max_args(option, args, 1)?;
    Ok(parse_bool(args.first().copied().unwrap_or("")))
}

/// Any 64-bit integer.
pub(crate) fn int_arg(option: &'static str, s: &str) -> Result<i64, UrlError> {
    s.parse::<i64>()
        .map_err(|_| UrlError::arg(option, s, "integer number"))
}

/// Integer ≥ 0 that fits in `u32`.
pub(crate) fn non_neg_u32(option: &'static str, s: &str) -> Result<u32, UrlError> {
    s.parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| UrlError::arg(option, s, "positive number or 0"))
}

fn finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Any finite float; a parse error reports the whole argument list (imgproxy's
/// `parseFloat` uses "Invalid … arguments").
pub(crate) fn plain_f64(option: &'static str, s: &str) -> Result<f64, UrlError> {
    finite(s).ok_or_else(|| UrlError::args(option, &[s]))
}

/// Finite float ≥ 0.
pub(crate) fn non_neg_f64(option: &'static str, s: &str) -> Result<f64, UrlError> {
    finite(s)
        .filter(|f| *f >= 0.0)
        .map(|f| f + 0.0) // folds -0 into 0
        .ok_or_else(|| UrlError::arg(option, s, "positive number or 0"))
}

/// Finite float > 0.
pub(crate) fn pos_f64(option: &'static str, s: &str) -> Result<f64, UrlError> {
    finite(s)
        .filter(|f| *f > 0.0)
        .ok_or_else(|| UrlError::arg(option, s, "positive number"))
}

/// Decimal digits only, 0..=255 (Go's `ParseUint(s, 10, 8)` takes no sign).
pub(crate) fn u8_digits(option: &'static str, s: &str) -> Result<u8, UrlError> {
    Some(s)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u8>().ok())
        .ok_or_else(|| UrlError::arg(option, s, "number in range 0-255"))
}

/// Megapixels → pixels. imgproxy truncates `f * 1e6`; we round when the
/// product is within float noise of an integer so that `1.234567` (as printed
/// by the canonical form) maps back to exactly 1 234 567 pixels.
pub(crate) fn mp_to_pixels(mp: f64) -> u64 {
    let p = mp * 1_000_000.0;
    let r = p.round();
    // Float→int `as` saturates, which is the right answer for absurd limits.
    // A few ulps of `p` as well: large limits lose the last digits to float precision.
    if (p - r).abs() < 1e-6 + p.abs() * 4.0 * f64::EPSILON {
        r as u64
    } else {
        p.floor() as u64
    }
}

/// Option names used in gravity errors, and which gravity kinds are allowed.
pub(crate) struct GravityNames {
    pub(crate) kind: &'static str,
    pub(crate) x: &'static str,
    pub(crate) y: &'static str,
    pub(crate) allow_smart: bool,
    pub(crate) expected: &'static str,
}

const WITH_SMART: &str = "ce, no, ea, so, we, noea, nowe, soea, sowe, sm, fp";
const WITHOUT_SMART: &str = "ce, no, ea, so, we, noea, nowe, soea, sowe, fp";

pub(crate) const GRAVITY_G: GravityNames = GravityNames {
    kind: "gravity",
    x: "gravity.x_offset",
    y: "gravity.y_offset",
    allow_smart: true,
    expected: WITH_SMART,
};
pub(crate) const CROP_G: GravityNames = GravityNames {
    kind: "crop.gravity",
    x: "crop.gravity.x_offset",
    y: "crop.gravity.y_offset",
    allow_smart: true,
    expected: WITH_SMART,
};
pub(crate) const EXTEND_G: GravityNames = GravityNames {
    kind: "extend.gravity",
    x: "extend.gravity.x_offset",
    y: "extend.gravity.y_offset",
    allow_smart: false,
    expected: WITHOUT_SMART,
};
pub(crate) const EXTEND_AR_G: GravityNames = GravityNames {
    kind: "extend_aspect_ratio.gravity",
    x: "extend_aspect_ratio.gravity.x_offset",
    y: "extend_aspect_ratio.gravity.y_offset",
    allow_smart: false,
    expected: WITHOUT_SMART,
};

/// `%type:%x:%y` applied on top of `current`: offsets not given are kept (as
/// imgproxy), `sm` clears them and takes no offsets, `fp` needs both in 0..=1.
pub(crate) fn parse_gravity(
    names: &GravityNames,
    current: Gravity,
    args: &[&str],
) -> Result<Gravity, UrlError> {
    let a0 = args.first().copied().unwrap_or("");
    let kind = GravityKind::from_name(a0)
        .filter(|k| {
            k.is_anchor()
                || *k == GravityKind::FocusPoint
                || (names.allow_smart && *k == GravityKind::Smart)
        })
        .ok_or_else(|| UrlError::arg(names.kind, a0, names.expected))?;
    let mut g = Gravity { kind, ..current };
    match kind {
        GravityKind::Smart => {
            if args.len() > 1 {
                return Err(UrlError::args(names.kind, args));
            }
            g.x = 0.0;
            g.y = 0.0;
            return Ok(g);
        }
        GravityKind::FocusPoint if args.len() != 3 => return Err(UrlError::args(names.kind, args)),
        _ if args.len() > 3 => return Err(UrlError::args(names.kind, args)),
        _ => {}
    }
    let fp = kind == GravityKind::FocusPoint;
    let offset = |name: &'static str, s: &str| {
        finite(s)
            .filter(|v| !fp || (0.0..=1.0).contains(v))
            .map(|v| v + 0.0)
            .ok_or_else(|| {
                UrlError::arg(name, s, if fp { "number in range 0-1" } else { "number" })
            })
    };
    if let Some(x) = args.get(1).filter(|s| !s.is_empty()) {
        g.x = offset(names.x, x)?;
    }
    if let Some(y) = args.get(2).filter(|s| !s.is_empty()) {
        g.y = offset(names.y, y)?;
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_follow_go() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(parse_bool(t));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False", "yes", "", "tRuE"] {
            assert!(!parse_bool(f));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(non_neg_u32("w", "+5"), Ok(5));
        assert!(non_neg_u32("w", "-1").is_err());
        assert!(non_neg_u32("w", "4294967296").is_err());
        assert!(non_neg_f64("bl", "NaN").is_err());
        assert!(non_neg_f64("bl", "inf").is_err());
        assert_eq!(
            non_neg_f64("bl", "-0").map(f64::to_bits),
            Ok(0f64.to_bits())
        );
        assert!(pos_f64("dpr", "0").is_err());
        assert!(u8_digits("bg", "+1").is_err());
        assert!(u8_digits("bg", "256").is_err());
        assert_eq!(mp_to_pixels(1.234567), 1_234_567);
        assert_eq!(mp_to_pixels(0.0000005), 0);
        assert_eq!(mp_to_pixels(f64::MAX), u64::MAX);
    }
}
