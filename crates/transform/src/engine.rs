//! The async face of the engine: start-up, self-test, jobs on the pool.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::observe::{JobObserver, QueueTicket};
use super::pool::{Full, Pool, PoolStats};
use super::{
    EngineError, EngineSettings, Format, ImageInfo, Job, Output, Probe, ProcessingOptions,
    TransformError, pipeline, vips,
};

/// The transform engine: a libvips worker pool. Cheap to clone (one shared
/// pool); the workers stop once every clone is dropped and the queue is
/// drained.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    settings: EngineSettings,
    observer: Option<Arc<dyn JobObserver>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.inner.settings)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Engine {
    /// Initialises libvips once per process (operation cache off, one libvips
    /// thread per job, untrusted and non-allow-listed loaders blocked:
    /// only JPEG, PNG, WebP, GIF, HEIF/AVIF and TIFF decode), starts the
    /// workers, and encodes a tiny image to every enabled output format.
    ///
    /// Fails with [`EngineError::FormatUnavailable`] naming the format when
    /// one cannot be produced (e.g. AVIF without libvips's HEIF module), so
    /// a broken runtime image fails at boot instead of per request.
    pub fn start(settings: EngineSettings) -> Result<Engine, EngineError> {
        Self::start_with(settings, None)
    }

    /// [`Engine::start`], reporting every job's queue wait and run time to `observer`
    /// (metrics).
    pub fn start_observed(
        settings: EngineSettings,
        observer: Arc<dyn JobObserver>,
    ) -> Result<Engine, EngineError> {
        Self::start_with(settings, Some(observer))
    }

    fn start_with(
        settings: EngineSettings,
        observer: Option<Arc<dyn JobObserver>>,
    ) -> Result<Engine, EngineError> {
        if settings.workers == 0 {
            return Err(EngineError::Settings("workers must be at least 1".into()));
        }
        if let Some(f) = settings.formats.iter().find(|f| !f.is_output()) {
            return Err(EngineError::Settings(format!(
                "{f} is not an output format (jpeg, png, webp, avif, gif)"
            )));
        }
        if settings.timeout.is_zero() {
            return Err(EngineError::Settings("timeout must be positive".into()));
        }
        if settings.avif_speed > 9 {
            return Err(EngineError::Settings("avif_speed must be 0..=9".into()));
        }
        vips::init().map_err(EngineError::Init)?;
        self_test(&settings)?;
        let pool = Pool::start(
            "imgforge-vips",
            settings.workers,
            settings.queue,
            vips::thread_shutdown,
        )
        .map_err(|e| EngineError::Spawn(e.to_string()))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                pool,
                settings,
                observer,
            }),
        })
    }

    /// The settings the engine runs with.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Runs `job` on the pool. Errors: see [`TransformError`]; the queue
    /// wait counts towards the timeout.
    pub async fn transform(&self, job: Job) -> Result<Output, TransformError> {
        let settings = self.inner.settings.clone();
        self.run(move |deadline| pipeline::transform(&settings, job, Some(deadline)))
            .await
    }

    /// Reads the source's header on the pool (no pixels decoded) and checks
    /// it is a decodable image. Use it before a transform when the caller
    /// needs the facts first (`skip_processing`, `/info`).
    pub async fn probe(&self, source: Bytes) -> Result<Probe, TransformError> {
        self.run(move |_| pipeline::probe(&source)).await
    }

    /// Same as [`Engine::probe`] (the `/info` facts).
    pub async fn info(&self, source: Bytes) -> Result<ImageInfo, TransformError> {
        self.probe(source).await
    }

    /// Checks header facts against the resolution and frame limits (engine
    /// settings, overridden by the URL's `msr`/`maf`/`mafr`), as a transform
    /// does before decoding. Pure and cheap (any thread): for paths that
    /// return the source untouched (`skip_processing`), so that a
    /// decompression bomb is not served either.
    pub fn check_limits(
        &self,
        probe: &Probe,
        options: &ProcessingOptions,
    ) -> Result<(), TransformError> {
        pipeline::check_limits(&self.inner.settings, probe, options)
    }

    /// Pool load for metrics.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(Instant) -> Result<T, TransformError> + Send + 'static,
    ) -> Result<T, TransformError> {
        let deadline = Instant::now() + self.inner.settings.timeout;
        let (tx, rx) = oneshot::channel();
        // Moved into the task: reports the queue wait when a worker takes the job, or at once
        // when the pool refuses it (the task is dropped unrun).
        let ticket = self.inner.observer.clone().map(QueueTicket::new);
        // `queue` ends when a worker takes the job; `processing` runs on the worker, under the
        // caller's span (the thread does not inherit it).
        let queue = crate::spans::queue();
        let caller = tracing::Span::current();
        self.inner
            .pool
            .submit(Box::new(move || {
                drop(queue);
                // The caller gave up (timeout, client gone): skip the work.
                let skip = tx.is_closed() || Instant::now() >= deadline;
                let _running = ticket.and_then(|t| t.leave(!skip));
                if skip {
                    return;
                }
                let result = crate::spans::processing(&caller).in_scope(|| f(deadline));
                let _ = tx.send(result);
            }))
            .map_err(|Full| TransformError::Overloaded)?;
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Err(_) => Err(TransformError::Timeout),
            Ok(Ok(result)) => result,
            Ok(Err(_)) if Instant::now() >= deadline => Err(TransformError::Timeout),
            Ok(Err(_)) => Err(TransformError::Internal("worker dropped the job".into())),
        }
    }
}

/// Encodes a 32×32 RGBA image to every enabled format and decodes it back.
fn self_test(settings: &EngineSettings) -> Result<(), EngineError> {
    for &format in &settings.formats {
        let fail = |reason: String| EngineError::FormatUnavailable {
            format: format.name(),
            reason,
        };
        if format == Format::Avif && !vips::heif_available() {
            return Err(fail(
                "libvips's HEIF module (vips-heif.so, libheif with the AV1 encoder) is not installed"
                    .into(),
            ));
        }
        let bytes =
            pipeline::self_test_encode(settings, format).map_err(|e| fail(e.to_string()))?;
        let sniffed = super::sniff(&bytes);
        if sniffed != Some(format) {
            return Err(fail(format!(
                "encoder produced {} instead",
                sniffed.map_or("unrecognised bytes", Format::name)
            )));
        }
        pipeline::probe(&bytes).map_err(|e| fail(format!("cannot decode own output: {e}")))?;
    }
    Ok(())
}
