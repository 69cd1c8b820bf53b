//! Options, aliases, arguments and path grammar on an unsigned route.

use super::Want::{Err as E, Ok as K};
use super::*;

/// `http://images.dev/lorem/ipsum.jpg` as plain source.
macro_rules! p {
    ($opts:literal) => {
        concat!("/_/", $opts, "/plain/http://images.dev/lorem/ipsum.jpg")
    };
}

fn o(r: &ImageRequest) -> &ProcessingOptions {
    &r.options
}

const D: f64 = 1e-9;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < D
}

pub(super) const OPTION_CASES: &[Case] = &[
    Case(
        "resize",
        p!("resize:fill:100:200:1"),
        K(|r| {
            let o = o(r);
            o.resizing_type == ResizingType::Fill && o.width == 100 && o.height == 200 && o.enlarge
        }),
    ),
    Case(
        "rs fill-down",
        p!("rs:fill-down:10"),
        K(|r| o(r).resizing_type == ResizingType::FillDown && o(r).width == 10),
    ),
    Case(
        "rs with extend gravity",
        p!("rs:auto:10:20:1:1:so:5:6"),
        K(|r| {
            let e = o(r).extend;
            e.enabled
                && e.gravity
                    == Gravity {
                        kind: GravityKind::South,
                        x: 5.0,
                        y: 6.0,
                    }
        }),
    ),
    Case(
        "rs too many args",
        p!("rs:fit:1:2:3:4:5:6:7:8"),
        E(404, "Invalid resize arguments"),
    ),
    Case(
        "size",
        p!("s:100:200:1"),
        K(|r| o(r).width == 100 && o(r).height == 200 && o(r).enlarge),
    ),
    Case(
        "size keeps empty",
        p!("w:7/size::50"),
        K(|r| o(r).width == 7 && o(r).height == 50),
    ),
    Case(
        "resizing_type",
        p!("resizing_type:force"),
        K(|r| o(r).resizing_type == ResizingType::Force),
    ),
    Case(
        "rt bad",
        p!("rt:crop"),
        E(404, "Invalid resizing_type: crop"),
    ),
    Case(
        "width alias",
        p!("width:100/h:30"),
        K(|r| o(r).width == 100 && o(r).height == 30),
    ),
    Case("width negative", p!("w:-1"), E(404, "Invalid width: -1")),
    Case(
        "width not a number",
        p!("w:abc"),
        E(404, "Invalid width: abc"),
    ),
    Case(
        "width two args",
        p!("w:1:2"),
        E(404, "Invalid width arguments"),
    ),
    Case(
        "more aliases",
        p!("height:5/mw:1/min-height:2/extend_aspect_ratio:1/sh:1/kcr:0"),
        K(|r| {
            let o = o(r);
            o.height == 5
                && o.min_width == 1
                && o.min_height == 2
                && o.extend_aspect_ratio.enabled
                && o.sharpen == 1.0
                && !o.keep_copyright
        }),
    ),
    Case(
        "min sizes",
        p!("min-width:10/mh:20"),
        K(|r| o(r).min_width == 10 && o(r).min_height == 20),
    ),
    Case(
        "zoom one",
        p!("z:2"),
        K(|r| o(r).zoom_x == 2.0 && o(r).zoom_y == 2.0),
    ),
    Case(
        "zoom two",
        p!("zoom:1.5:2.5"),
        K(|r| o(r).zoom_x == 1.5 && o(r).zoom_y == 2.5),
    ),
    Case("zoom zero", p!("z:0"), E(404, "Invalid zoom: 0")),
    Case("dpr", p!("dpr:2"), K(|r| o(r).dpr == 2.0)),
    Case("dpr zero", p!("dpr:0"), E(404, "Invalid dpr")),
    Case(
        "enlarge bools",
        p!("el:1/enlarge:True"),
        K(|r| o(r).enlarge),
    ),
    Case(
        "invalid bool is false",
        p!("el:1/el:yes"),
        K(|r| !o(r).enlarge),
    ),
    Case(
        "extend",
        p!("ex:1:so:10:20"),
        K(|r| {
            o(r).extend
                == Extend {
                    enabled: true,
                    gravity: Gravity {
                        kind: GravityKind::South,
                        x: 10.0,
                        y: 20.0,
                    },
                }
        }),
    ),
    Case(
        "extend smart",
        p!("extend:1:sm"),
        E(404, "Invalid extend.gravity: sm"),
    ),
    Case(
        "extend replicate",
        p!("ex:1:re"),
        E(404, "Invalid extend.gravity: re"),
    ),
    Case(
        "extend_ar aliases",
        p!("extend_ar:1:fp:0.5:0.25"),
        K(|r| {
            let e = o(r).extend_aspect_ratio;
            e.enabled && e.gravity.kind == GravityKind::FocusPoint && e.gravity.y == 0.25
        }),
    ),
    Case(
        "exar",
        p!("exar:t"),
        K(|r| o(r).extend_aspect_ratio.enabled),
    ),
    Case(
        "gravity",
        p!("gravity:soea"),
        K(|r| o(r).gravity.kind == GravityKind::SouthEast),
    ),
    Case(
        "gravity fp",
        p!("g:fp:0.5:0.75"),
        K(|r| {
            o(r).gravity
                == Gravity {
                    kind: GravityKind::FocusPoint,
                    x: 0.5,
                    y: 0.75,
                }
        }),
    ),
    Case(
        "gravity fp needs 3 args",
        p!("g:fp:0.5"),
        E(404, "Invalid gravity arguments"),
    ),
    Case(
        "gravity fp out of range",
        p!("g:fp:2:0.5"),
        E(404, "Invalid gravity.x_offset: 2"),
    ),
    Case(
        "gravity smart",
        p!("g:no:3:4/g:sm"),
        K(|r| {
            o(r).gravity
                == Gravity {
                    kind: GravityKind::Smart,
                    x: 0.0,
                    y: 0.0,
                }
        }),
    ),
    Case(
        "gravity smart no offsets",
        p!("g:sm:1"),
        E(404, "Invalid gravity arguments"),
    ),
    Case(
        "gravity replicate",
        p!("g:re"),
        E(404, "Invalid gravity: re"),
    ),
    Case(
        "gravity keeps offsets",
        p!("g:no:10:20/g:so"),
        K(|r| {
            o(r).gravity
                == Gravity {
                    kind: GravityKind::South,
                    x: 10.0,
                    y: 20.0,
                }
        }),
    ),
    Case(
        "crop",
        p!("crop:100:200"),
        K(|r| {
            o(r).crop
                == Crop {
                    width: 100.0,
                    height: 200.0,
                    gravity: None,
                }
        }),
    ),
    Case(
        "crop gravity",
        p!("c:100:200:nowe:10:20"),
        K(|r| {
            o(r).crop.gravity
                == Some(Gravity {
                    kind: GravityKind::NorthWest,
                    x: 10.0,
                    y: 20.0,
                })
        }),
    ),
    Case(
        "crop replicate",
        p!("c:100:200:re"),
        E(404, "Invalid crop.gravity: re"),
    ),
    Case(
        "crop negative",
        p!("c:-1"),
        E(404, "Invalid crop.width: -1"),
    ),
    Case(
        "trim",
        p!("trim:10:ff00ff:1:0"),
        K(|r| {
            let t = o(r).trim;
            t.threshold == Some(10.0)
                && t.color
                    == Some(Rgb {
                        r: 255,
                        g: 0,
                        b: 255,
                    })
                && t.equal_hor
                && !t.equal_ver
        }),
    ),
    Case(
        "trim disabled",
        p!("t:5/t::ff00ff"),
        K(|r| o(r).trim == Trim::default()),
    ),
    Case(
        "trim bad",
        p!("t:abc"),
        E(404, "Invalid trim arguments: abc"),
    ),
    Case(
        "padding one",
        p!("pd:10"),
        K(|r| {
            o(r).padding
                == Padding {
                    top: 10,
                    right: 10,
                    bottom: 10,
                    left: 10,
                }
        }),
    ),
    Case(
        "padding two",
        p!("padding:10:20"),
        K(|r| {
            o(r).padding
                == Padding {
                    top: 10,
                    right: 20,
                    bottom: 10,
                    left: 20,
                }
        }),
    ),
    Case(
        "padding three",
        p!("pd:1:2:3"),
        K(|r| {
            o(r).padding
                == Padding {
                    top: 1,
                    right: 2,
                    bottom: 3,
                    left: 2,
                }
        }),
    ),
    Case(
        "padding five",
        p!("pd:1:2:3:4:5"),
        E(404, "Invalid padding arguments"),
    ),
    Case(
        "auto_rotate",
        p!("auto_rotate:false/ar:0"),
        K(|r| !o(r).auto_rotate),
    ),
    Case("rotate", p!("rot:90"), K(|r| o(r).rotate == 90)),
    Case(
        "rotate normalised",
        p!("rotate:450/rot:-90"),
        K(|r| o(r).rotate == 270),
    ),
    Case(
        "rotate 45",
        p!("rot:45"),
        E(404, "Rotation angle must be a multiple of 90"),
    ),
    Case(
        "flip",
        p!("fl:1:0/flip::1"),
        K(|r| o(r).flip_horizontal && o(r).flip_vertical),
    ),
    Case(
        "background rgb",
        p!("bg:128:129:130"),
        K(|r| {
            o(r).background
                == Some(Rgb {
                    r: 128,
                    g: 129,
                    b: 130,
                })
        }),
    ),
    Case(
        "background hex",
        p!("background:ffddee"),
        K(|r| {
            o(r).background
                == Some(Rgb {
                    r: 0xff,
                    g: 0xdd,
                    b: 0xee,
                })
        }),
    ),
    Case(
        "background disable",
        p!("bg:fff/bg:"),
        K(|r| o(r).background.is_none()),
    ),
    Case(
        "background two args",
        p!("bg:1:2"),
        E(404, "Invalid background arguments"),
    ),
    Case(
        "background 256",
        p!("bg:256:0:0"),
        E(404, "Invalid background.R: 256"),
    ),
    Case(
        "blur sharpen pixelate",
        p!("bl:0.2/sharpen:0.3/pix:5"),
        K(|r| close(o(r).blur, 0.2) && close(o(r).sharpen, 0.3) && o(r).pixelate == 5),
    ),
    Case(
        "pixelate 1 is off",
        p!("pixelate:1"),
        K(|r| o(r).pixelate == 0),
    ),
    Case("blur negative", p!("blur:-1"), E(404, "Invalid blur: -1")),
    Case(
        "watermark",
        p!("wm:0.5:soea:10:20:0.6"),
        K(|r| {
            o(r).watermark
                == Watermark {
                    opacity: 0.5,
                    position: GravityKind::SouthEast,
                    x_offset: 10.0,
                    y_offset: 20.0,
                    scale: 0.6,
                }
        }),
    ),
    Case(
        "watermark replicate",
        p!("watermark:1:re"),
        K(|r| o(r).watermark.position == GravityKind::Replicate),
    ),
    Case(
        "watermark opacity",
        p!("wm:2"),
        E(404, "Invalid watermark.opacity: 2"),
    ),
    Case(
        "watermark smart",
        p!("wm:0.5:sm"),
        E(404, "Invalid watermark.position: sm"),
    ),
    Case(
        "metadata flags",
        p!("sm:0/keep_copyright:false/scp:f/ph:1/eth:TRUE"),
        K(|r| {
            let o = o(r);
            !o.strip_metadata
                && !o.keep_copyright
                && !o.strip_color_profile
                && o.preserve_hdr
                && o.enforce_thumbnail
        }),
    ),
    Case(
        "metadata long names",
        p!("strip_metadata:false/strip_color_profile:0/preserve_hdr:t/enforce_thumbnail:1"),
        K(|r| {
            !o(r).strip_metadata
                && !o(r).strip_color_profile
                && o(r).preserve_hdr
                && o(r).enforce_thumbnail
        }),
    ),
    Case("quality", p!("quality:55"), K(|r| o(r).quality == 55)),
    Case("quality 101", p!("q:101"), E(404, "Invalid quality: 101")),
    Case(
        "format_quality",
        p!("fq:webp:70:avif:50/format_quality:jpg:90"),
        K(|r| {
            o(r).format_quality
                == BTreeMap::from([(Format::Jpeg, 90), (Format::Webp, 70), (Format::Avif, 50)])
        }),
    ),
    Case(
        "format_quality odd",
        p!("fq:webp:70:avif"),
        E(404, "Missing format_quality for: avif"),
    ),
    Case(
        "format_quality format",
        p!("fq:foo:1"),
        E(404, "Invalid image format: foo"),
    ),
    Case(
        "max_bytes",
        p!("mb:1000/max_bytes:2000"),
        K(|r| o(r).max_bytes == 2000),
    ),
    Case(
        "max_bytes negative",
        p!("mb:-1"),
        E(404, "Invalid max_bytes: -1"),
    ),
    Case(
        "format",
        p!("format:webp"),
        K(|r| o(r).format == Some(Format::Webp)),
    ),
    Case(
        "f and ext aliases",
        p!("f:png/ext:jpg"),
        K(|r| o(r).format == Some(Format::Jpeg)),
    ),
    Case("format bad", p!("f:xyz"), E(404, "Invalid format: xyz")),
    Case(
        "format cannot encode",
        p!("f:bmp"),
        E(422, "Resulting image format is not supported: bmp"),
    ),
    Case(
        "skip_processing",
        p!("skp:jpg:png/skip_processing:jpeg"),
        K(|r| o(r).skip_processing == vec![Format::Jpeg, Format::Png]),
    ),
    Case(
        "skip_processing bad",
        p!("skp:jpg:png:bad_format"),
        E(404, "Invalid image format in skip_processing: bad_format"),
    ),
    Case(
        "cachebuster",
        p!("cachebuster:123"),
        K(|r| o(r).cachebuster.as_deref() == Some("123")),
    ),
    Case(
        "cachebuster cleared",
        p!("cb:123/cb:"),
        K(|r| o(r).cachebuster.is_none()),
    ),
    Case(
        "expires future",
        p!("exp:32503669200"),
        K(|r| o(r).expires == Some(32_503_669_200) && !r.canonical.contains("exp")),
    ),
    Case(
        "expires past",
        p!("expires:1609448400"),
        E(404, "Expired URL"),
    ),
    Case(
        "expires bad",
        p!("exp:soon"),
        E(404, "Invalid expires: soon"),
    ),
    Case(
        "filename",
        p!("fn:my-file.jpg"),
        K(|r| o(r).filename.as_deref() == Some("my-file.jpg")),
    ),
    Case(
        "filename base64",
        p!("filename:bXkgZmlsZTovLw:1"),
        K(|r| o(r).filename.as_deref() == Some("my file://")),
    ),
    Case(
        "filename bad base64",
        p!("fn:!!!:1"),
        E(404, "Invalid filename: !!!"),
    ),
    Case(
        "return_attachment",
        p!("att:1/return_attachment:true"),
        K(|r| o(r).return_attachment),
    ),
    Case(
        "security option refused",
        p!("msr:1"),
        E(403, "Security processing options are not allowed"),
    ),
    Case(
        "security option long name",
        p!("max_result_dimension:10"),
        E(403, "not allowed"),
    ),
    Case(
        "unknown option",
        p!("unknown:1"),
        E(404, "Unknown processing option unknown"),
    ),
    Case(
        "pro option is unknown",
        p!("ra:lanczos3"),
        E(404, "Unknown processing option ra"),
    ),
    Case(
        "defaults",
        p!("cb:1"),
        K(|r| {
            let o = o(r);
            o.auto_rotate
                && o.strip_metadata
                && o.keep_copyright
                && o.dpr == 1.0
                && o.format.is_none()
        }),
    ),
];

#[test]
fn options_table() {
    let n = run(&open_route(), &RequestHints::default(), OPTION_CASES);
    assert!(n >= 80);
}
