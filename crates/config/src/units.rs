//! Human-friendly sizes (`"256MiB"`) and durations (`"5s"`) as they appear in the TOML config.
//!
//! Both types deserialize from a string (or a bare integer, meaning bytes / seconds), so a typo is
//! reported by serde with the span of the offending value.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A byte count written as `"64KiB"`, `"256MiB"`, `"10GiB"`, `"1.5GB"`, `"512"` or a bare integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// A duration written as `"250ms"`, `"5s"`, `"2m"`, `"1h"`, `"1m30s"` or a bare integer (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl ByteSize {
    /// Parses the textual form; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            _ => return Err(size_expected(text)),
        };
        if num.is_empty() {
            return Err(size_expected(text));
        }
        let bytes = if num.contains('.') {
            let f: f64 = num.parse().map_err(|_| size_expected(text))?;
            let v = f * mult as f64;
            if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
                return Err(size_expected(text));
            }
            v.round() as u64
        } else {
            let n: u64 = num.parse().map_err(|_| size_expected(text))?;
            n.checked_mul(mult).ok_or_else(|| size_expected(text))?
        };
        Ok(ByteSize(bytes))
    }
}

fn size_expected(text: &str) -> String {
    format!(
        "invalid size {text:?}: expected a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. \"256MiB\""
    )
}

fn duration_expected(text: &str) -> String {
    format!(
        "invalid duration {text:?}: expected a number with a unit (ms, s, m, h, d), e.g. \"5s\" or \"1m30s\""
    )
}

impl HumanDuration {
    /// Parses the textual form; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(duration_expected(text));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = t.parse().map_err(|_| duration_expected(text))?;
            return Ok(HumanDuration(Duration::from_secs(secs)));
        }
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| duration_expected(text))?;
            let (num, tail) = rest.split_at(num_end);
            let unit_end = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, next) = tail.split_at(unit_end);
            let value: f64 = num.parse().map_err(|_| duration_expected(text))?;
            let secs_per_unit = match unit.trim() {
                "ms" => 0.001,
                "s" | "sec" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                _ => return Err(duration_expected(text)),
            };
            let part = value * secs_per_unit;
            if !part.is_finite() || !(0.0..=1e9).contains(&part) {
                return Err(duration_expected(text));
            }
            total += Duration::from_secs_f64(part);
            rest = next.trim_start();
        }
        Ok(HumanDuration(total))
    }
}

impl ByteSize {
    /// The shortest exact text form: `"256MiB"`, `"10GiB"`, or bytes (`"1000"`).
    pub fn text(&self) -> String {
        let n = self.0;
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if n != 0 && n.is_multiple_of(1u64 << shift) {
                return format!("{}{unit}", n >> shift);
            }
        }
        n.to_string()
    }
}

impl HumanDuration {
    /// The shortest exact text form: `"5s"`, `"2m"`, `"1h"`, `"7d"`, `"250ms"`.
    pub fn text(&self) -> String {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            let s = d.as_secs();
            return match s {
                0 => "0s".into(),
                _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
                _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
                _ if s.is_multiple_of(60) => format!("{}m", s / 60),
                _ => format!("{s}s"),
            };
        }
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            return format!("{}ms", d.as_millis());
        }
        format!("{}s", d.as_secs_f64())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"256MiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration(Duration::from_secs(v)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("512", 512),
            ("64KiB", 64 << 10),
            ("256MiB", 256 << 20),
            ("10GiB", 10 << 30),
            ("1.5GB", 1_500_000_000),
            ("32 MiB", 32 << 20),
            ("1kb", 1000),
        ];
        for (text, want) in ok {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(want)), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "12XB",
            "-1",
            "1..2MiB",
            "99999999999999999999",
            "1e3",
        ] {
            assert!(ByteSize::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("5s", 5_000),
            ("250ms", 250),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("7", 7_000),
            ("1d", 86_400_000),
        ];
        for (text, want) in ok {
            assert_eq!(
                HumanDuration::parse(text).map(|d| d.0.as_millis()),
                Ok(want),
                "{text}"
            );
        }
        for bad in ["", "s", "5x", "5 parsecs", "-1s", "1e400s", "ms5"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad} should fail");
        }
    }

    /// What `--print-config` writes reads back as the same value.
    #[test]
    fn text_forms_round_trip() {
        for n in [
            0,
            1,
            1000,
            1024,
            64 << 10,
            256 << 20,
            10 << 30,
            3 << 40,
            (1 << 20) + 1,
        ] {
            let text = ByteSize(n).text();
            assert_eq!(ByteSize::parse(&text), Ok(ByteSize(n)), "{text}");
        }
        assert_eq!(ByteSize(256 << 20).text(), "256MiB");
        for d in [
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(90),
            Duration::from_secs(3_600),
            Duration::from_secs(7 * 86_400),
            Duration::from_millis(250),
            Duration::from_millis(1_500),
        ] {
            let text = HumanDuration(d).text();
            assert_eq!(HumanDuration::parse(&text), Ok(HumanDuration(d)), "{text}");
        }
        assert_eq!(HumanDuration(Duration::from_secs(120)).text(), "2m");
    }
}
