/* The numbers C and Rust share: the one table of them.
 *
 * glue.h expands each line into a C enumerator (IFG_CODE(LOAD_JPEG, 1) -> IFG_LOAD_JPEG = 1);
 * build.rs reads this file and writes the same names as Rust constants (codes::LOAD_JPEG), so the
 * two sides cannot disagree. build.rs accepts nothing but comments and IFG_CODE(NAME, INTEGER)
 * lines, and fails the build on a repeated name, on two codes of one group sharing a value, and
 * on a sign that breaks the return convention of glue.h (kinds of failure are negative, a
 * fallback positive); glue.h checks the same signs again with _Static_assert.
 */

/* Source formats the glue decodes (ifg_load). */
IFG_CODE(LOAD_JPEG, 1)
IFG_CODE(LOAD_PNG, 2)
IFG_CODE(LOAD_WEBP, 3)
IFG_CODE(LOAD_GIF, 4)
IFG_CODE(LOAD_HEIF, 5) /* AVIF and HEIC */
IFG_CODE(LOAD_TIFF, 6)

/* Output formats (ifg_save). */
IFG_CODE(SAVE_JPEG, 1)
IFG_CODE(SAVE_PNG, 2)
IFG_CODE(SAVE_WEBP, 3)
IFG_CODE(SAVE_GIF, 4)
IFG_CODE(SAVE_AVIF, 5)

/* A fast path (jpeg.c, webp.c, resample.c) does not handle this input: the caller uses libvips. */
IFG_CODE(FALLBACK, 1)

/* What failed, returned by every entry point that can fail (0 is success). The message in
 * libvips's error buffer is for logs only: callers classify by these. */
IFG_CODE(ERR_INTERNAL, -1) /* anything else: a bug or the environment (a bare `return -1`) */
IFG_CODE(ERR_DECODE, -2)   /* the source's data: its decoder failed, now or when pixels were read */
IFG_CODE(ERR_LIMITS, -3)   /* the image is larger than a decoder or encoder can hold */
IFG_CODE(ERR_ENCODE, -4)   /* an encoder failed on pixels that decoded fine */
