//! The transform engine: source bytes + [`ProcessingOptions`] → image bytes.
//!
//! libvips runs only on the engine's own OS threads (a bounded pool), never
//! on an event loop: callers `await` a oneshot channel. Layout:
//!
//! * [`sniff`](sniff()) — magic bytes → format (pure, cheap, any thread).
//! * `geometry`, `plan` — options + source size → steps (pure, unit-tested
//!   on numbers, imgproxy's rules).
//! * `vips` — the thin libvips binding (`glue.c` + a safe `Image`).
//! * `pipeline` — a whole job as one list of named stages; `frames` (animations) and
//!   `watermark` beside it; `steps` — what the three share (context, opening a source, the
//!   plan's geometric steps, libvips failures by kind). `steps` imports none of them, and
//!   `watermark` neither of the other two.
//! * `pool` — worker threads and the bounded queue.
//! * `observe` — job events for metrics ([`JobObserver`]) and libvips's
//!   memory figures ([`vips_memory`]).
//! * [`engine`](Engine) — start-up (libvips init, loader allow-list,
//!   self-test) and the async API.
//!
//! # Calling sequence
//!
//! ```text
//! let engine = Engine::start(settings)?;                    // once, at boot
//! let job = Job::new(source_bytes, request.options.clone())
//!     .decide(move |probe, animated| request.output_format(Some(probe.format), animated))
//!     .quality(Quality::from_route(&route_settings));
//! let out = engine.transform(job).await?;                   // Output { bytes, format, … }
//! // Content-Type: out.format.mime()
//! ```
//!
//! The output format is chosen inside the job, after the header is read, by
//! the caller's rule ([`OutputChoice::Decide`]) so that the source format and
//! animation are known without a second trip through the queue.
//! [`Engine::probe`] answers the same facts on their own (e.g. for
//! `skip_processing` or `/info`).

mod engine;
mod error;
mod frames;
mod geometry;
mod observe;
mod pipeline;
mod plan;
mod pool;
mod sniff;
pub mod spans;
mod steps;
mod watermark;

use imgforge_vips as vips;

#[doc(hidden)]
pub mod testkit;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use engine::Engine;
pub use error::{EngineError, TransformError};
pub use imgforge_imgproxy::{Format, ProcessingOptions};
pub use observe::{JobObserver, VipsMemory, vips_memory};
pub use pool::PoolStats;
pub use sniff::{decodable, sniff};

/// Synchronous stages for `benches/transform.rs`. They run libvips on the
/// calling thread: never call them on an event loop.
#[doc(hidden)]
pub mod bench {
    use super::{EngineSettings, Job, Output, Probe, TransformError, pipeline, vips};
    use bytes::Bytes;

    /// Initialises libvips as [`super::Engine::start`] does.
    pub fn init() -> Result<(), String> {
        vips::init()
    }

    /// Header only.
    pub fn probe(source: &Bytes) -> Result<Probe, TransformError> {
        pipeline::probe(source)
    }

    /// Full decode into memory, with JPEG/WebP shrink-on-load `shrink`.
    pub fn decode(source: &Bytes, shrink: u8) -> Result<(u32, u32), TransformError> {
        pipeline::decode_for_bench(source, shrink)
    }

    /// A whole job on this thread.
    pub fn transform(settings: &EngineSettings, job: Job) -> Result<Output, TransformError> {
        pipeline::transform(settings, job, None)
    }
}

/// Engine-wide settings (TOML `[transform]`). URL security options
/// (`msr`, `maf`, `mafr`, `mrd`) override the limits per request.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// Worker threads, i.e. images processed at once (≥ 1).
    pub workers: usize,
    /// Jobs that may wait for a worker; beyond, [`TransformError::Overloaded`].
    pub queue: usize,
    /// Time budget of one job, queue wait included.
    pub timeout: Duration,
    /// Largest source, in pixels (width × height × frames loaded); 0 = no
    /// limit.
    pub max_src_resolution: u64,
    /// Frames of an animation processed; 1 = only the first frame (the
    /// output is still).
    pub max_animation_frames: u32,
    /// When > 0, animations are checked per frame against this instead of
    /// `max_src_resolution` against the total.
    pub max_animation_frame_resolution: u64,
    /// Largest side of a result (scaled down to fit); 0 = no limit.
    pub max_result_dimension: u32,
    /// AV1 encoder speed 0 (slow, small) ..= 9 (fast).
    pub avif_speed: u8,
    /// Progressive (interlaced) JPEG output.
    pub jpeg_progressive: bool,
    /// Output formats that may be produced; each is self-tested at start.
    pub formats: Vec<Format>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            workers: 2,
            queue: 64,
            timeout: Duration::from_secs(10),
            max_src_resolution: 50_000_000,
            max_animation_frames: 1,
            max_animation_frame_resolution: 0,
            max_result_dimension: 0,
            avif_speed: 8,
            jpeg_progressive: false,
            formats: vec![
                Format::Jpeg,
                Format::Png,
                Format::Webp,
                Format::Avif,
                Format::Gif,
            ],
        }
    }
}

/// Route quality defaults: `quality_for` falls back to these after `q` and
/// `fq` from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quality {
    /// Default quality (imgproxy: 80).
    pub default: u8,
    /// Per-format defaults (imgproxy: webp 79, avif 63).
    pub per_format: BTreeMap<Format, u8>,
}

impl Default for Quality {
    fn default() -> Self {
        Quality {
            default: 80,
            per_format: BTreeMap::from([(Format::Webp, 79), (Format::Avif, 63)]),
        }
    }
}

impl Quality {
    /// The defaults of an imgproxy route.
    pub fn from_route(route: &imgforge_imgproxy::RouteSettings) -> Quality {
        Quality {
            default: route.quality,
            per_format: route.format_quality.clone(),
        }
    }
}

/// A format-choosing rule run after the header is read: given the source
/// facts and whether the result will stay animated (the source is animated
/// and `max_animation_frames` > 1), returns the output format.
pub type DecideFormat = Box<dyn FnOnce(&Probe, bool) -> Format + Send>;

/// How the output format is chosen.
pub enum OutputChoice {
    /// This format.
    Format(Format),
    /// The caller's rule, typically
    /// `|p, animated| request.output_format(Some(p.format), animated)`.
    Decide(DecideFormat),
}

impl fmt::Debug for OutputChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputChoice::Format(format) => f.debug_tuple("Format").field(format).finish(),
            OutputChoice::Decide(_) => f.write_str("Decide(..)"),
        }
    }
}

/// One transform request.
pub struct Job {
    /// The source image as fetched (never trusted: sniffed, limited).
    pub source: Bytes,
    /// Parsed options (`raw` and `skip_processing` are the caller's: the
    /// engine always processes).
    pub options: ProcessingOptions,
    /// Output format rule.
    pub output: OutputChoice,
    /// Route quality defaults.
    pub quality: Quality,
    /// Watermark image bytes, used when `options.watermark.opacity` > 0.
    pub watermark: Option<Arc<Bytes>>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Byte counts, not bytes: a Job may end up in a log line.
        f.debug_struct("Job")
            .field("source_bytes", &self.source.len())
            .field("options", &self.options)
            .field("output", &self.output)
            .field("quality", &self.quality)
            .field("watermark_bytes", &self.watermark.as_ref().map(|w| w.len()))
            .finish()
    }
}

impl Job {
    /// A job with JPEG output, imgproxy's quality defaults, no watermark.
    pub fn new(source: Bytes, options: ProcessingOptions) -> Job {
        Job {
            source,
            options,
            output: OutputChoice::Format(Format::Jpeg),
            quality: Quality::default(),
            watermark: None,
        }
    }

    /// Sets an explicit output format.
    pub fn format(mut self, format: Format) -> Job {
        self.output = OutputChoice::Format(format);
        self
    }

    /// Sets a format rule run once the source is known.
    pub fn decide(mut self, rule: impl FnOnce(&Probe, bool) -> Format + Send + 'static) -> Job {
        self.output = OutputChoice::Decide(Box::new(rule));
        self
    }

    /// Sets the route's quality defaults.
    pub fn quality(mut self, quality: Quality) -> Job {
        self.quality = quality;
        self
    }

    /// Sets the watermark image.
    pub fn watermark(mut self, image: Arc<Bytes>) -> Job {
        self.watermark = Some(image);
        self
    }
}

/// An encoded image: the buffer the encoder wrote, held without a copy. It reads as `&[u8]`;
/// `Bytes::from(encoded)` takes the same buffer over (no copy either).
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded(Bytes);

impl Encoded {
    /// The bytes, as a [`Bytes`] over the same buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<Bytes> for Encoded {
    fn from(bytes: Bytes) -> Encoded {
        Encoded(bytes)
    }
}

impl From<Encoded> for Bytes {
    fn from(encoded: Encoded) -> Bytes {
        encoded.0
    }
}

impl std::ops::Deref for Encoded {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Encoded {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A byte count, not the bytes: an Output may end up in a log line.
        write!(f, "Encoded({} bytes)", self.0.len())
    }
}

/// Facts from a source's header (no pixels decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Format by magic bytes.
    pub format: Format,
    /// Width as stored (before EXIF rotation).
    pub width: u32,
    /// Height of one frame as stored.
    pub height: u32,
    /// Pages or frames in the file.
    pub pages: u32,
    /// An animation (several frames with delays: GIF, WebP).
    pub animated: bool,
    /// Has an alpha channel.
    pub alpha: bool,
    /// EXIF orientation 1..=8.
    pub orientation: u8,
    /// Source size in bytes.
    pub bytes: usize,
}

/// What `/info` reports: the same facts as a probe.
pub type ImageInfo = Probe;

/// A finished image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Encoded bytes: the encoder's own allocation, never copied on the way here.
    pub bytes: Encoded,
    /// Their format: the chosen one, except AVIF smaller than 16 px, which
    /// falls back to PNG (alpha) or JPEG. Use it for `Content-Type`.
    pub format: Format,
    /// Result width.
    pub width: u32,
    /// Result height (of one frame).
    pub height: u32,
    /// Frames in the result (1 = still).
    pub pages: u32,
    /// The source's header facts.
    pub source: Probe,
}
