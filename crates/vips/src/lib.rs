//! A thin, safe binding over libvips through `glue.c`.
//!
//! [`Image`] owns one libvips reference and is deliberately neither `Send`
//! nor `Sync`: images live and die on the worker thread that made them, so
//! libvips's per-thread state never sees an image from another thread. Every
//! operation returns a new [`Image`]; the input stays valid.

mod ffi;

use ffi::codes;

use std::ffi::{CStr, c_int, c_void};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use bytes::Bytes;

/// What failed, as the C side returned it (`codes.h`): the one thing to classify a failure by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source's data: its decoder failed, when the header was read or later, when a step
    /// (a crop, a resize, the save) first read its pixels. The client's fault.
    Decode,
    /// The image is larger than a codec can hold: a decoded size that cannot be allocated, an
    /// output past JPEG's 65500 px. The request's fault.
    Limits,
    /// An encoder failed on pixels that decoded fine: ours.
    Encode,
    /// Anything else: a bug or the environment.
    Internal,
}

impl ErrorKind {
    /// The kind of a failed entry point's return code (unknown codes are internal failures).
    fn of(code: c_int) -> ErrorKind {
        match code {
            codes::ERR_DECODE => ErrorKind::Decode,
            codes::ERR_LIMITS => ErrorKind::Limits,
            codes::ERR_ENCODE => ErrorKind::Encode,
            codes::ERR_INTERNAL => ErrorKind::Internal,
            _ => ErrorKind::Internal,
        }
    }
}

/// A libvips failure: its kind, and a message for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipsError {
    /// What failed.
    pub kind: ErrorKind,
    /// libvips's message, for logs only: it comes from libvips's process-wide error buffer, so
    /// it may be another thread's, or [`UNKNOWN_ERROR`] when another thread took this one.
    pub message: String,
}

impl VipsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> VipsError {
        VipsError {
            kind,
            message: message.into(),
        }
    }

    /// The failure an entry point reported with `code`, with whatever message the buffer holds.
    fn from_code(code: c_int) -> VipsError {
        VipsError::new(ErrorKind::of(code), take_error())
    }
}

impl std::fmt::Display for VipsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for VipsError {}

pub type Result<T> = std::result::Result<T, VipsError>;

/// Decoders reachable through [`Image::load`] (the allow-list in `glue.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Jpeg,
    Png,
    Webp,
    Gif,
    Heif,
    Tiff,
}

/// How [`Image::load`] opens a source. [`LoadOptions::new`] gives the first page, unscaled,
/// read once top to bottom; set the other fields by struct update:
/// `LoadOptions { access: Access::Random, ..LoadOptions::new(loader) }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOptions {
    /// The decoder (chosen from the sniffed format, never by libvips).
    pub loader: Loader,
    /// JPEG shrink-on-load: 1, 2, 4 or 8 (DCT scaling). Other loaders ignore it.
    pub shrink: i32,
    /// WebP scale-on-load, in (0, 1]. Other loaders ignore it.
    pub scale: f64,
    /// The frames to load (GIF and WebP; other loaders read one page).
    pub pages: Pages,
    /// How the pixels will be read.
    pub access: Access,
}

impl LoadOptions {
    pub fn new(loader: Loader) -> LoadOptions {
        LoadOptions {
            loader,
            shrink: 1,
            scale: 1.0,
            pages: Pages::First(1),
            access: Access::Sequential,
        }
    }
}

/// Frames of an animation to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pages {
    /// The first n (at least 1).
    First(u32),
    /// Every frame.
    All,
}

/// How a loaded image's pixels will be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Once, top to bottom: libvips streams the decode in strips.
    Sequential,
    /// In any order, or more than once (rotation, trim, frames cut out of a strip).
    Random,
}

/// What [`Image::finish`] keeps and strips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishOptions {
    /// Strip metadata (EXIF, XMP, IPTC, …) and set 72 dpi.
    pub strip: bool,
    /// With `strip`: keep EXIF Copyright and Artist.
    pub keep_copyright: bool,
    /// Keep the colour profile (else a non-sRGB one is applied to the pixels and dropped).
    pub keep_profile: bool,
    /// A frame strip: keep its animation fields.
    pub animated: bool,
    /// The pixels were rotated or flipped: drop the EXIF orientation even when not stripping.
    pub rotated: bool,
}

/// A mirror axis for [`Image::flip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Left and right swap.
    Horizontal,
    /// Top and bottom swap.
    Vertical,
}

/// Where [`Image::replicate`] starts its tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileOrigin {
    /// At the top-left corner.
    TopLeft,
    /// So that a whole tile sits in the middle.
    Centre,
}

/// Which half of an operation with a fast path runs (tests compare the two).
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The glue's own code (jpeg.c, webp.c, resample.c); `None` when it falls back.
    Direct,
    /// libvips's.
    Libvips,
}

/// Encoders reachable through [`Image::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saver {
    Jpeg { progressive: bool },
    Png,
    Webp,
    Gif,
    Avif { speed: u8 },
}

/// libvips allocates through glibc malloc from its worker threads; one arena per thread
/// multiplies its resident memory (libvips's own advice is `MALLOC_ARENA_MAX=2`). Call first
/// thing in `main`, before any other thread exists.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator tuning; the caller runs before other threads
    // exist, so no allocation is in flight elsewhere.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Initialises libvips once per process (`VIPS_INIT`, one thread per
/// pipeline, operation cache off, untrusted and non-allow-listed loaders
/// blocked). Later calls return the first outcome.
pub fn init() -> std::result::Result<(), String> {
    INIT.get_or_init(|| {
        // SAFETY: ifg_init has no preconditions; OnceLock runs it once.
        if unsafe { ffi::ifg_init() } == 0 {
            Ok(())
        } else {
            Err(take_error())
        }
    })
    .clone()
}

/// Whether the HEIF module (AVIF/HEIC load and save) is installed.
pub fn heif_available() -> bool {
    // SAFETY: a type lookup; libvips is initialised by the caller.
    unsafe { ffi::ifg_heif_available() != 0 }
}

/// Releases libvips's per-thread buffers; call when a worker thread exits.
pub fn thread_shutdown() {
    // SAFETY: vips_thread_shutdown frees only this thread's libvips buffers, and no image of this
    // thread is left to use them: an Image never leaves the thread that made it (it is neither Send
    // nor Sync) and the pool calls this as the worker exits.
    unsafe { ffi::ifg_thread_shutdown() }
}

/// libvips's memory accounting (the transform crate reports it as `VipsMemory`).
pub fn tracked_memory() -> (u64, u64, u64) {
    // SAFETY: plain reads under libvips's own mutex; valid before and after
    // `init` (libvips sets its tracking up on first use).
    let (mem, high, allocs) = unsafe {
        (
            ffi::ifg_tracked_mem(),
            ffi::ifg_tracked_mem_highwater(),
            ffi::ifg_tracked_allocs(),
        )
    };
    (mem as u64, high as u64, u64::try_from(allocs).unwrap_or(0))
}

/// Forgets messages left in libvips's error buffer (decoders also log
/// warnings there on success), so that the next failure reports only itself, and any decode
/// failure recorded on this thread (see `ifg_fail` in `glue.h`).
pub fn clear_errors() {
    // SAFETY: vips_error_clear takes libvips's error lock; the decode record it also resets is this
    // thread's own.
    unsafe { ffi::ifg_error_clear() }
}

/// The message of a failure whose message was gone from the error buffer (another thread took
/// it). Its kind is unaffected: that comes from the return code.
pub const UNKNOWN_ERROR: &str = "unknown libvips error";

/// Copies and clears libvips's (process-global) error buffer. Call right
/// after the failing call: another thread may append to it at any time.
fn take_error() -> String {
    // SAFETY: returns a g_malloc'd copy (or NULL) that we free below.
    let p = unsafe { ffi::ifg_error_take() };
    if p.is_null() {
        return UNKNOWN_ERROR.to_owned();
    }
    // SAFETY: p is a NUL-terminated string owned by us until ifg_free.
    let message = unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_owned();
    // SAFETY: p came from g_strdup.
    unsafe { ffi::ifg_free(p.cast()) };
    if message.is_empty() {
        UNKNOWN_ERROR.to_owned()
    } else {
        message
    }
}

fn check(rc: c_int) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(VipsError::from_code(rc))
    }
}

/// Drops the boxed source buffer when libvips closes the loaded image.
unsafe extern "C" fn release_bytes(_image: *mut ffi::VipsImage, user: *mut c_void) {
    // SAFETY: `user` is the Box<Bytes> leaked in Image::load; libvips emits
    // "postclose" exactly once.
    drop(unsafe { Box::from_raw(user.cast::<Bytes>()) });
}

/// A buffer the C side allocated with g_malloc (an encoded image, rendered pixels), owned here
/// until the last [`Bytes`] over it is dropped: handed to the response without a copy.
///
/// Invariant: `ptr` is valid for reads of `len` initialised bytes, which nothing else writes or
/// frees; `drop` frees it, once.
struct CBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a CBuffer is the only handle to a plain byte block: nothing in it is tied to the thread
// that allocated it, and g_free may run on any thread.
unsafe impl Send for CBuffer {}

impl CBuffer {
    /// Takes over what an entry point returned in `buf` and `len` (0 was its result).
    fn take(buf: *mut c_void, len: usize) -> Result<Bytes> {
        let ptr = NonNull::new(buf.cast::<u8>())
            .ok_or_else(|| VipsError::new(ErrorKind::Internal, "no buffer returned"))?;
        Ok(Bytes::from_owner(CBuffer { ptr, len }))
    }
}

impl AsRef<[u8]> for CBuffer {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: CBuffer's invariant: `len` initialised bytes at `ptr`, alive until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for CBuffer {
    fn drop(&mut self) {
        // SAFETY: the block came from g_malloc (glue.h's buffer contract) and this is its only
        // owner: no slice of it outlives `self` (Bytes drops its owner last).
        unsafe { ffi::ifg_free(self.ptr.as_ptr().cast()) }
    }
}

/// One reference to a libvips image.
///
/// Invariant (what every `unsafe` block below relies on): `self.0` is a reference this value
/// owns to a live `VipsImage`, released exactly once in `drop`, and used only on the thread that
/// made it (the raw pointer makes `Image` neither `Send` nor `Sync`), which is also what the
/// decode record of `glue.c` needs (see `ifg_fail` in `glue.h`).
pub struct Image(NonNull<ffi::VipsImage>);

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference.
        unsafe { ffi::ifg_unref(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("width", &self.width())
            .field("height", &self.height())
            .field("bands", &self.bands())
            .finish()
    }
}

impl Image {
    /// Runs `f` with an out-pointer and wraps the image it produced.
    fn make(f: impl FnOnce(*mut *mut ffi::VipsImage) -> c_int) -> Result<Image> {
        let mut out: *mut ffi::VipsImage = ptr::null_mut();
        let rc = f(&mut out);
        match (rc, NonNull::new(out)) {
            (0, Some(p)) => Ok(Image(p)),
            (0, None) => Err(VipsError::new(
                ErrorKind::Internal,
                "libvips returned no image",
            )),
            (_, p) => {
                let e = VipsError::from_code(rc);
                if let Some(p) = p {
                    drop(Image(p));
                }
                Err(e)
            }
        }
    }

    fn ptr(&self) -> *mut ffi::VipsImage {
        self.0.as_ptr()
    }

    /// Decodes a JPEG scaled by 1/`shrink` (1, 2, 4 or 8) at once with libjpeg, with the
    /// metadata of `header` (the same source opened by [`Image::load`]). `Ok(None)`: a
    /// colour space only libvips's loader handles (CMYK, YCCK); load it that way.
    pub fn decode_jpeg(source: &Bytes, shrink: i32, header: &Image) -> Result<Option<Image>> {
        let mut out: *mut ffi::VipsImage = ptr::null_mut();
        // SAFETY: the buffer is valid for len bytes for the whole (synchronous) call; the
        // result owns a copy of the pixels, so it does not borrow `source`.
        let rc = unsafe {
            ffi::ifg_jpeg_decode(
                source.as_ptr().cast(),
                source.len(),
                shrink,
                header.ptr(),
                &mut out,
            )
        };
        match (rc, NonNull::new(out)) {
            (0, Some(p)) => Ok(Some(Image(p))),
            (codes::FALLBACK, _) => Ok(None),
            (0, None) => Err(VipsError::new(
                ErrorKind::Internal,
                "libjpeg returned no image",
            )),
            _ => Err(VipsError::from_code(rc)),
        }
    }

    /// Opens `source` with one decoder. Decoding is lazy: until pixels are
    /// read only the header is parsed. The image keeps `source` alive.
    pub fn load(source: &Bytes, options: LoadOptions) -> Result<Image> {
        let LoadOptions {
            loader,
            shrink,
            scale,
            pages,
            access,
        } = options;
        let pages = match pages {
            Pages::First(n) => c_int::try_from(n.max(1)).unwrap_or(c_int::MAX),
            Pages::All => -1,
        };
        let sequential = c_int::from(access == Access::Sequential);
        let code = match loader {
            Loader::Jpeg => codes::LOAD_JPEG,
            Loader::Png => codes::LOAD_PNG,
            Loader::Webp => codes::LOAD_WEBP,
            Loader::Gif => codes::LOAD_GIF,
            Loader::Heif => codes::LOAD_HEIF,
            Loader::Tiff => codes::LOAD_TIFF,
        };
        let keep = Box::into_raw(Box::new(source.clone()));
        let result = Image::make(|out| {
            // SAFETY: the buffer is valid for len bytes and is kept alive by
            // `keep`, which the image releases from its postclose signal.
            unsafe {
                ffi::ifg_load(
                    source.as_ptr().cast(),
                    source.len(),
                    code,
                    shrink,
                    scale,
                    pages,
                    sequential,
                    release_bytes,
                    keep.cast(),
                    out,
                )
            }
        });
        if result.is_err() {
            // SAFETY: on failure glue.c did not take ownership of `keep`.
            drop(unsafe { Box::from_raw(keep) });
        }
        result
    }

    /// An 8-bit image from raw pixels (1 = grey, 2 = grey + alpha, 3 = RGB,
    /// 4 = RGBA bands), copied.
    pub fn from_pixels(data: &[u8], width: u32, height: u32, bands: u32) -> Result<Image> {
        let expected = width as usize * height as usize * bands as usize;
        if data.len() != expected || width == 0 || height == 0 || !(1..=4).contains(&bands) {
            return Err(VipsError::new(
                ErrorKind::Internal,
                format!(
                    "pixel buffer of {} bytes does not match {width}x{height}x{bands}",
                    data.len()
                ),
            ));
        }
        Image::make(|out| {
            // SAFETY: data is valid for len bytes; libvips copies it.
            unsafe {
                ffi::ifg_new_from_pixels(
                    data.as_ptr().cast(),
                    data.len(),
                    width as c_int,
                    height as c_int,
                    bands as c_int,
                    out,
                )
            }
        })
    }

    pub fn width(&self) -> u32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_width reads its header and
        // nothing else.
        unsafe { ffi::ifg_width(self.ptr()) }.max(0) as u32
    }

    pub fn height(&self) -> u32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_height reads its header and
        // nothing else.
        unsafe { ffi::ifg_height(self.ptr()) }.max(0) as u32
    }

    pub fn bands(&self) -> u32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_bands reads its header and
        // nothing else.
        unsafe { ffi::ifg_bands(self.ptr()) }.max(0) as u32
    }

    pub fn has_alpha(&self) -> bool {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_has_alpha reads its header and
        // nothing else.
        unsafe { ffi::ifg_has_alpha(self.ptr()) != 0 }
    }

    /// Height of one frame (the whole height for still images).
    pub fn page_height(&self) -> u32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_page_height reads its header
        // and nothing else.
        unsafe { ffi::ifg_page_height(self.ptr()) }.max(1) as u32
    }

    /// Pages in the file (not only those loaded).
    pub fn n_pages(&self) -> u32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_n_pages reads its header and
        // nothing else.
        unsafe { ffi::ifg_n_pages(self.ptr()) }.max(1) as u32
    }

    /// Several pages with frame delays: an animation.
    pub fn is_animated(&self) -> bool {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_is_animated reads its header
        // and nothing else.
        unsafe { ffi::ifg_is_animated(self.ptr()) != 0 }
    }

    /// EXIF orientation 1..=8 (1 when absent).
    pub fn orientation(&self) -> u8 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_orientation reads its header
        // and nothing else.
        unsafe { ffi::ifg_orientation(self.ptr()) }.clamp(1, 8) as u8
    }

    /// Frame delays in ms (empty when unknown).
    pub fn delays(&self) -> Vec<i32> {
        let mut buf = vec![0 as c_int; 1024];
        // SAFETY: `self.0` is live (Image's invariant); ifg_delays writes at most `max` ints, and
        // `buf` holds `buf.len()` = max of them.
        let n = unsafe { ffi::ifg_delays(self.ptr(), buf.as_mut_ptr(), buf.len() as c_int) };
        buf.truncate(n.clamp(0, 1024) as usize);
        buf
    }

    /// Loop count (0 = forever).
    pub fn loop_count(&self) -> i32 {
        // SAFETY: `self.0` is a live image (Image's invariant); ifg_loop reads its header and
        // nothing else.
        unsafe { ffi::ifg_loop(self.ptr()) }
    }

    /// Sets the EXIF orientation (test fixtures).
    pub fn with_orientation(&self, orientation: u8) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_set_orientation copies the image lazily, then writes one new reference to `*out` that
        // `make` takes over.
        Image::make(|out| unsafe {
            ffi::ifg_set_orientation(self.ptr(), out, c_int::from(orientation))
        })
    }

    /// Band values of one pixel (evaluates the pipeline up to that pixel).
    pub fn getpoint(&self, x: u32, y: u32) -> Result<Vec<f64>> {
        let mut buf = [0f64; 8];
        let mut n: c_int = 0;
        // SAFETY: `self.0` is live (Image's invariant); ifg_getpoint writes at most `max` = 8
        // doubles into `buf`, which holds 8, and one int into `n`.
        check(unsafe {
            ffi::ifg_getpoint(
                self.ptr(),
                x as c_int,
                y as c_int,
                buf.as_mut_ptr(),
                8,
                &mut n,
            )
        })?;
        Ok(buf[..(n.max(0) as usize).min(8)].to_vec())
    }

    /// Renders the pixels into memory: random access for the steps that
    /// need it (rotate, smart crop, repeated saves).
    pub fn copy_memory(&self) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_copy_memory renders the pixels, then writes one new reference to `*out` that `make`
        // takes over.
        Image::make(|out| unsafe { ffi::ifg_copy_memory(self.ptr(), out) })
    }

    /// 8-bit sRGB or grey, whatever the source space (see `glue.c`).
    pub fn to_processing(&self) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_to_processing builds the conversion, then writes one new reference to `*out` that
        // `make` takes over.
        Image::make(|out| unsafe { ffi::ifg_to_processing(self.ptr(), out) })
    }

    pub fn resize(&self, hscale: f64, vscale: f64) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_resize builds the resize (resample.c reads pixels only when they are in memory
        // already), then writes one new reference to `*out` that `make` takes over.
        Image::make(|out| unsafe { ffi::ifg_resize(self.ptr(), out, hscale, vscale) })
    }

    pub fn extract(&self, left: u32, top: u32, width: u32, height: u32) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_extract checks the area against the image itself, then writes one new reference to
        // `*out` that `make` takes over.
        Image::make(|out| unsafe {
            ffi::ifg_extract(
                self.ptr(),
                out,
                left as c_int,
                top as c_int,
                width as c_int,
                height as c_int,
            )
        })
    }

    pub fn smartcrop(&self, width: u32, height: u32) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_smartcrop reads the pixels, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe {
            ffi::ifg_smartcrop(self.ptr(), out, width as c_int, height as c_int)
        })
    }

    pub fn rotate(&self, angle: u16) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_rot builds the rotation, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe { ffi::ifg_rot(self.ptr(), out, c_int::from(angle)) })
    }

    pub fn flip(&self, direction: Direction) -> Result<Image> {
        let horizontal = c_int::from(direction == Direction::Horizontal);
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_flip builds the mirror, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe { ffi::ifg_flip(self.ptr(), out, horizontal) })
    }

    pub fn filters(&self, blur: f64, sharpen: f64, pixelate: u32) -> Result<Image> {
        let pixelate = pixelate.min(c_int::MAX as u32) as c_int;
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_filters builds the filters, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe { ffi::ifg_filters(self.ptr(), out, blur, sharpen, pixelate) })
    }

    /// Places the image at (x, y) on a transparent canvas.
    pub fn embed(&self, x: u32, y: u32, width: u32, height: u32) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_embed builds the canvas, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe {
            ffi::ifg_embed(
                self.ptr(),
                out,
                x as c_int,
                y as c_int,
                width as c_int,
                height as c_int,
            )
        })
    }

    /// Removes alpha by blending onto `rgb`.
    pub fn flatten(&self, rgb: [u8; 3]) -> Result<Image> {
        let [r, g, b] = rgb.map(f64::from);
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_flatten builds the blend, then writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe { ffi::ifg_flatten(self.ptr(), out, r, g, b) })
    }

    /// The box outside of which everything is within `threshold` of the
    /// background (`color`, or the top-left pixel): (left, top, width, height).
    pub fn find_trim(
        &self,
        threshold: f64,
        color: Option<[u8; 3]>,
    ) -> Result<(u32, u32, u32, u32)> {
        let [r, g, b] = color.unwrap_or_default().map(f64::from);
        let (mut l, mut t, mut w, mut h) = (0, 0, 0, 0);
        // SAFETY: the four out-pointers are valid locals.
        check(unsafe {
            ffi::ifg_find_trim(
                self.ptr(),
                threshold,
                c_int::from(color.is_some()),
                r,
                g,
                b,
                &mut l,
                &mut t,
                &mut w,
                &mut h,
            )
        })?;
        Ok((
            l.max(0) as u32,
            t.max(0) as u32,
            w.max(0) as u32,
            h.max(0) as u32,
        ))
    }

    /// Tiles the image over width × height.
    pub fn replicate(&self, width: u32, height: u32, origin: TileOrigin) -> Result<Image> {
        let centered = origin == TileOrigin::Centre;
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_replicate builds the tiling, then writes one new reference to `*out` that `make`
        // takes over.
        Image::make(|out| unsafe {
            ffi::ifg_replicate(
                self.ptr(),
                out,
                width as c_int,
                height as c_int,
                c_int::from(centered),
            )
        })
    }

    /// Draws `overlay` at (x, y) (may be negative) with `opacity`.
    pub fn composite(&self, overlay: &Image, x: i32, y: i32, opacity: f64) -> Result<Image> {
        // SAFETY: `self.0` and `overlay.0` are live images (Image's invariant) and `out` is
        // `make`'s out-pointer; ifg_composite takes its own references to both inputs and writes
        // one new reference to `*out` that `make` takes over.
        Image::make(|out| unsafe {
            ffi::ifg_composite(self.ptr(), overlay.ptr(), out, x, y, opacity)
        })
    }

    /// Stacks frames top to bottom.
    pub fn arrayjoin(frames: &[Image]) -> Result<Image> {
        let mut ptrs: Vec<*mut ffi::VipsImage> = frames.iter().map(Image::ptr).collect();
        // SAFETY: `ptrs` holds `ptrs.len()` live images borrowed from `frames` for the call;
        // ifg_arrayjoin takes its own references to them and writes one new reference to `*out`
        // that `make` takes over.
        Image::make(|out| unsafe {
            ffi::ifg_arrayjoin(ptrs.as_mut_ptr(), ptrs.len() as c_int, out)
        })
    }

    /// Marks a frame strip as an animation.
    pub fn set_animation(
        &self,
        page_height: u32,
        delays: &[i32],
        loop_count: i32,
    ) -> Result<Image> {
        // SAFETY: `self.0` is live (Image's invariant), `delays` is valid for `delays.len()` ints,
        // which ifg_set_animation copies; it writes one new reference to `*out` that `make` takes
        // over.
        Image::make(|out| unsafe {
            ffi::ifg_set_animation(
                self.ptr(),
                out,
                page_height as c_int,
                delays.as_ptr(),
                delays.len() as c_int,
                loop_count,
            )
        })
    }

    pub fn remove_animation(&self) -> Result<Image> {
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_remove_animation copies the image lazily, then writes one new reference to `*out`
        // that `make` takes over.
        Image::make(|out| unsafe { ffi::ifg_remove_animation(self.ptr(), out) })
    }

    /// Colour profile to sRGB (unless kept) and metadata stripping.
    pub fn finish(&self, options: FinishOptions) -> Result<Image> {
        let FinishOptions {
            strip,
            keep_copyright,
            keep_profile,
            animated,
            rotated,
        } = options;
        // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s out-pointer;
        // ifg_finish copies the image lazily, then writes one new reference to `*out` that `make`
        // takes over.
        Image::make(|out| unsafe {
            ffi::ifg_finish(
                self.ptr(),
                out,
                c_int::from(strip),
                c_int::from(keep_copyright),
                c_int::from(keep_profile),
                c_int::from(animated),
                c_int::from(rotated),
            )
        })
    }

    /// A downscale through resample.c (`Ok(None)`: it falls back) or through vips_resize: the
    /// two halves of `resize`.
    #[cfg(any(test, feature = "test-support"))]
    pub fn resize_by(&self, hscale: f64, vscale: f64, via: Via) -> Result<Option<Image>> {
        if via == Via::Libvips {
            // SAFETY: `self.0` is a live image (Image's invariant) and `out` is `make`'s
            // out-pointer; ifg_resize_libvips builds the resize, then writes one new reference to
            // `*out` that `make` takes over.
            return Image::make(|out| unsafe {
                ffi::ifg_resize_libvips(self.ptr(), out, hscale, vscale)
            })
            .map(Some);
        }
        let mut out: *mut ffi::VipsImage = ptr::null_mut();
        // SAFETY: a valid image in, a new reference (or nothing) out.
        let rc = unsafe { ffi::ifg_resample_down(self.ptr(), &mut out, hscale, vscale) };
        if rc == codes::FALLBACK {
            return Ok(None);
        }
        check(rc)?;
        NonNull::new(out)
            .map(|p| Some(Image(p)))
            .ok_or_else(|| VipsError::new(ErrorKind::Internal, "resample returned no image"))
    }

    /// Every pixel, band-interleaved rows (renders a lazy pipeline).
    #[cfg(any(test, feature = "test-support"))]
    pub fn pixels(&self) -> Result<Bytes> {
        let mut len = 0usize;
        let mut buf: *mut c_void = ptr::null_mut();
        // SAFETY: `self.0` is live (Image's invariant); on 0, ifg_pixels stores a g_malloc'd
        // block of `len` bytes in `buf`, which CBuffer takes over.
        check(unsafe { ffi::ifg_pixels(self.ptr(), &mut buf, &mut len) })?;
        CBuffer::take(buf, len)
    }

    /// JPEG or WebP through the direct encoder (jpeg.c, webp.c; `Ok(None)`: it falls back) or
    /// through libvips's saver: the two halves of `save` for those formats.
    #[cfg(any(test, feature = "test-support"))]
    pub fn save_by(&self, saver: Saver, via: Via, quality: u8) -> Result<Option<Bytes>> {
        let libvips = via == Via::Libvips;
        let mut buf: *mut c_void = ptr::null_mut();
        let mut len = 0usize;
        let q = c_int::from(quality.clamp(1, 100));
        // SAFETY: `self.0` is live (Image's invariant) and the out-pointers are valid locals; on
        // 0 each encoder stores a g_malloc'd block of `len` bytes in `buf` (CBuffer takes it
        // over below), on a fallback or a failure it leaves nothing to free.
        let rc = unsafe {
            match (saver, libvips) {
                (Saver::Jpeg { progressive }, false) => {
                    let p = c_int::from(progressive);
                    ffi::ifg_jpeg_encode(self.ptr(), q, p, &mut buf, &mut len)
                }
                (Saver::Jpeg { progressive }, true) => {
                    let p = c_int::from(progressive);
                    ffi::ifg_save_libvips_jpeg(self.ptr(), q, p, &mut buf, &mut len)
                }
                (Saver::Webp, false) => ffi::ifg_webp_encode(self.ptr(), q, &mut buf, &mut len),
                (Saver::Webp, true) => {
                    ffi::ifg_save_libvips_webp(self.ptr(), q, &mut buf, &mut len)
                }
                _ => {
                    return Err(VipsError::new(
                        ErrorKind::Internal,
                        "no direct encoder for this format",
                    ));
                }
            }
        };
        if rc == codes::FALLBACK {
            return Ok(None);
        }
        check(rc)?;
        CBuffer::take(buf, len).map(Some)
    }

    /// Encodes the image (this is where a lazy pipeline actually runs). The bytes are the
    /// encoder's own allocation, not a copy.
    pub fn save(&self, saver: Saver, quality: u8) -> Result<Bytes> {
        let (code, option) = match saver {
            Saver::Jpeg { progressive } => (codes::SAVE_JPEG, c_int::from(progressive)),
            Saver::Png => (codes::SAVE_PNG, 0),
            Saver::Webp => (codes::SAVE_WEBP, 0),
            Saver::Gif => (codes::SAVE_GIF, 0),
            Saver::Avif { speed } => (codes::SAVE_AVIF, c_int::from(speed)),
        };
        let mut buf: *mut c_void = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `self.0` is live (Image's invariant) and the out-pointers are valid locals;
        // on 0, ifg_save stores a g_malloc'd block of exactly `len` bytes in `buf`, which
        // CBuffer takes over (on failure it stores nothing to free).
        check(unsafe {
            ffi::ifg_save(
                self.ptr(),
                code,
                c_int::from(quality.clamp(1, 100)),
                option,
                &mut buf,
                &mut len,
            )
        })?;
        CBuffer::take(buf, len)
    }
}
