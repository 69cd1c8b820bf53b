//! Fuzzes the image decode path: arbitrary bytes go through the sniffer, the libvips header
//! probe and a whole transform job (the engine's pipeline, run on this thread). Nothing may
//! panic or crash, a probe only succeeds on bytes the sniffer recognised, a failure is always a
//! client-side status (415/422: the data is at fault, never a 500), and a success is a non-empty
//! image of the format asked for, within the requested box.
//!
//! The first input byte picks the processing options; the rest is the source image.
//!
//! Run: `scripts/fuzz.sh image_decode` (or `cargo fuzz run image_decode` on nightly).

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use imgforge_imgproxy::{Format, ProcessingOptions, RequestHints, RouteSettings, parse_request};
use imgforge_transform::{EngineSettings, Job, bench, sniff};
use libfuzzer_sys::fuzz_target;

/// Option strings (imgproxy URL grammar) and the box the result must fit in (a width alone does
/// not bound the height: `max_result_dimension` does).
const VARIANTS: &[(&str, Format, u32)] = &[
    ("rs:fit:64:64", Format::Png, 64),
    ("rs:fill:32:48/g:ce", Format::Jpeg, 48),
    ("w:40/bl:2/sh:1", Format::Webp, 256),
    ("rs:force:20:20/rot:90/fl:1", Format::Gif, 20),
    ("w:16/ar:1/bg:ff0000", Format::Jpeg, 256),
    ("c:30:30/pd:2", Format::Png, 34),
];

struct Setup {
    settings: EngineSettings,
    variants: Vec<(ProcessingOptions, Format, u32)>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        if let Err(e) = bench::init() {
            panic!("libvips init: {e}");
        }
        let route = RouteSettings {
            allow_unsigned: true,
            ..RouteSettings::default()
        };
        let variants = VARIANTS
            .iter()
            .map(|(opts, format, max)| {
                let path = format!("/unsafe/{opts}/plain/src.jpg");
                match parse_request(&path, &RequestHints::default(), &route, 0) {
                    Ok(r) => (r.options, *format, *max),
                    Err(e) => panic!("fuzz options {opts}: {e}"),
                }
            })
            .collect();
        // Small limits keep every execution fast; the checks are the same as in production.
        let settings = EngineSettings {
            workers: 1,
            max_src_resolution: 4_000_000,
            max_animation_frames: 3,
            max_result_dimension: 256,
            formats: vec![Format::Jpeg, Format::Png, Format::Webp, Format::Gif],
            ..EngineSettings::default()
        };
        Setup { settings, variants }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, image)) = data.split_first() else {
        return;
    };
    let setup = setup();
    let source = Bytes::copy_from_slice(image);
    let sniffed = sniff(&source);
    match bench::probe(&source) {
        Ok(probe) => assert_eq!(Some(probe.format), sniffed, "probe disagrees with sniff"),
        Err(e) => {
            assert!(matches!(e.status(), 415 | 422), "probe: {e:?}");
            return;
        }
    }
    let (options, format, max) = &setup.variants[usize::from(selector) % setup.variants.len()];
    let job = Job::new(source, options.clone()).format(*format);
    match bench::transform(&setup.settings, job) {
        Ok(out) => {
            assert!(!out.bytes.is_empty());
            assert_eq!(out.format, *format);
            assert_eq!(sniff(&out.bytes), Some(*format), "output is what it claims");
            assert!(out.width >= 1 && out.height >= 1);
            assert!(out.width <= *max && out.height <= *max, "{out:?}");
        }
        Err(e) => assert!(matches!(e.status(), 415 | 422), "transform: {e:?}"),
    }
});
