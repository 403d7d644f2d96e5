//! Thumbnails for images, made in-process with the `image` crate (no ffmpeg): decoded under
//! limits that refuse decompression bombs, turned upright by the EXIF orientation, scaled down to
//! fit a square of `max_edge` keeping the aspect ratio (never up), encoded as JPEG.
//!
//! Decoding every uploaded image fully is also the check that it *is* an image: ingest should
//! refuse an upload for which this returns a client error ([`ThumbnailError::kind`] is
//! `BadRequest`), since a file that starts like a PNG but does not decode has no business being
//! served as one.
//!
//! CPU-bound and blocking: call it from `tokio::task::spawn_blocking` or a job thread.

use std::io::{self, BufReader, Cursor};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::error::{AppError, ErrorKind};

/// The small thumbnail: grids and lists.
pub const SMALL: u32 = 320;
/// The large thumbnail: previews and posters.
pub const LARGE: u32 = 960;
/// The sizes made for every image, by longest edge.
pub const SIZES: [u32; 2] = [SMALL, LARGE];

/// Images with more pixels than this are refused, not decoded (40 megapixels: larger than any
/// phone or school camera produces, and 160 MiB as RGBA).
pub const MAX_PIXELS: u64 = 40_000_000;
/// No side may be longer than this (a 3000×17 banner is fine; a 100000×1 strip is not).
pub const MAX_SIDE: u32 = 20_000;
/// What the decoder may allocate in all: the RGBA image at [`MAX_PIXELS`] plus headroom.
const MAX_ALLOC: u64 = MAX_PIXELS * 4 + 64 * 1024 * 1024;

const JPEG_QUALITY: u8 = 82;

/// The formats decoded here: the image formats `ingest::detect` accepts, and nothing else.
const FORMATS: [ImageFormat; 4] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The encoded image.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub mime: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("not a decodable JPEG, PNG, GIF or WebP image: {0}")]
    Undecodable(String),
    #[error("image over the limits ({MAX_PIXELS} pixels, {MAX_SIDE} per side): {detail}")]
    TooLarge {
        /// Width and height, when the header was read far enough to know them.
        dimensions: Option<(u32, u32)>,
        detail: String,
    },
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("encoding the thumbnail: {0}")]
    Encode(ImageError),
}

impl AppError for ThumbnailError {
    fn code(&self) -> &'static str {
        match self {
            ThumbnailError::Undecodable(_) => "image-undecodable",
            ThumbnailError::TooLarge { .. } => "image-too-large",
            ThumbnailError::Io { .. } | ThumbnailError::Encode(_) => "thumbnail-failed",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            ThumbnailError::Undecodable(_) | ThumbnailError::TooLarge { .. } => ErrorKind::BadRequest,
            ThumbnailError::Io { .. } | ThumbnailError::Encode(_) => ErrorKind::Internal,
        }
    }

    fn user_message(&self) -> String {
        match self {
            ThumbnailError::Undecodable(_) => "This image could not be read: it may be damaged or only partly \
                                                uploaded. Open it on your device to check it, save it again as \
                                                JPEG or PNG, and upload that copy."
                .into(),
            ThumbnailError::TooLarge { dimensions, .. } => {
                let size = match dimensions {
                    Some((w, h)) => format!("This image is {w}×{h} pixels, which is"),
                    None => "This image is".into(),
                };
                format!(
                    "{size} larger than reelbox accepts (at most {} megapixels and {MAX_SIDE} pixels on a \
                     side). Scale it down in an image editor and upload it again.",
                    MAX_PIXELS / 1_000_000
                )
            }
            ThumbnailError::Io { .. } | ThumbnailError::Encode(_) => {
                "The server could not make a preview of this image. The image itself is kept; \
                 please tell your IT administrator if previews keep failing."
                    .into()
            }
        }
    }
}

/// One thumbnail of the image in `bytes`, at most `max_edge` pixels on its longest side.
pub fn thumbnail(bytes: &[u8], max_edge: u32) -> Result<Thumbnail, ThumbnailError> {
    let mut thumbs = thumbnails(bytes, &[max_edge])?;
    thumbs.pop().ok_or_else(|| ThumbnailError::Undecodable("no thumbnail size asked for".into()))
}

/// One thumbnail per entry of `max_edges` (e.g. [`SIZES`]), decoding the image once.
pub fn thumbnails(bytes: &[u8], max_edges: &[u32]) -> Result<Vec<Thumbnail>, ThumbnailError> {
    let image = decode(ImageReader::new(Cursor::new(bytes)))?;
    scale_all(image, max_edges)
}

/// [`thumbnails`] for an image on disk (read through a buffer, never whole into memory first).
pub fn thumbnails_of_file(path: &Path, max_edges: &[u32]) -> Result<Vec<Thumbnail>, ThumbnailError> {
    let io_err = |source| ThumbnailError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let image = decode(ImageReader::new(BufReader::new(file)))?;
    scale_all(image, max_edges)
}

/// Whether the image at `path` decodes, whole, under the same limits as [`thumbnails_of_file`]:
/// its size (width, height) if it does. Ingest calls this before an image upload is accepted,
/// so an image that cannot be shown is refused rather than kept.
pub fn check_file(path: &Path) -> Result<(u32, u32), ThumbnailError> {
    let io_err = |source| ThumbnailError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let image = decode(ImageReader::new(BufReader::new(file)))?;
    Ok((image.width(), image.height()))
}

/// Largest size first, each scaled from the one before: a 40-megapixel photo is filtered once,
/// not once per size.
fn scale_all(image: DynamicImage, max_edges: &[u32]) -> Result<Vec<Thumbnail>, ThumbnailError> {
    let mut order: Vec<usize> = (0..max_edges.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(max_edges[i]));
    let mut out: Vec<Option<Thumbnail>> = vec![None; max_edges.len()];
    let mut source = image;
    for i in order {
        source = scale(&source, max_edges[i]);
        out[i] = Some(encode(&source)?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Decode under the limits, upright.
fn decode<R: io::BufRead + io::Seek>(reader: ImageReader<R>) -> Result<DynamicImage, ThumbnailError> {
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Undecodable(format!("reading the header: {e}")))?;
    match reader.format() {
        Some(format) if FORMATS.contains(&format) => {}
        Some(format) => {
            return Err(ThumbnailError::Undecodable(format!("{format:?} is not a format we decode")));
        }
        None => return Err(ThumbnailError::Undecodable("not a known image format".into())),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);

    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ThumbnailError::Undecodable(format!("image has no pixels ({width}×{height})")));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS || width > MAX_SIDE || height > MAX_SIDE {
        return Err(ThumbnailError::TooLarge { dimensions: Some((width, height)), detail: "header".into() });
    }
    // A broken EXIF block is not worth refusing a picture for: show it as stored.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        ImageError::Limits(e) => {
            ThumbnailError::TooLarge { dimensions: Some((width, height)), detail: e.to_string() }
        }
        e => decode_error(e),
    })?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_error(e: ImageError) -> ThumbnailError {
    match e {
        // Only the header has been read here; the decoder refused it before telling us its size.
        ImageError::Limits(e) => ThumbnailError::TooLarge { dimensions: None, detail: e.to_string() },
        e => ThumbnailError::Undecodable(e.to_string()),
    }
}

/// Fit within `max_edge`×`max_edge`, keeping the aspect ratio; never enlarge.
fn scale(image: &DynamicImage, max_edge: u32) -> DynamicImage {
    let max_edge = max_edge.max(1);
    if image.width() <= max_edge && image.height() <= max_edge {
        image.clone()
    } else {
        image.resize(max_edge, max_edge, image::imageops::FilterType::Triangle)
    }
}

fn encode(image: &DynamicImage) -> Result<Thumbnail, ThumbnailError> {
    let rgb = DynamicImage::ImageRgb8(flatten_on_white(image));
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
    rgb.write_with_encoder(encoder).map_err(ThumbnailError::Encode)?;
    Ok(Thumbnail { bytes, width: rgb.width(), height: rgb.height(), mime: "image/jpeg" })
}

/// JPEG has no transparency: composite over white, as a page background would show it, rather
/// than let transparent pixels turn black.
fn flatten_on_white(image: &DynamicImage) -> image::RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            // (c·a + 255·(255−a)) / 255, rounded; at most 255, so the cast cannot truncate.
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([over(r), over(g), over(b)])
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    fn png(img: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    fn decode_jpeg(t: &Thumbnail) -> DynamicImage {
        assert_eq!(t.mime, "image/jpeg");
        let img = image::load_from_memory_with_format(&t.bytes, ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (t.width, t.height));
        img
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }

    /// A well-formed PNG header claiming `width`×`height` RGBA pixels, with one tiny IDAT.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        // zlib, one stored block of 16 zero bytes, then its Adler-32.
        let mut idat = vec![0x78, 0x01, 0x01, 16, 0, !16, 0xFF];
        idat.extend_from_slice(&[0; 16]);
        idat.extend_from_slice(&0x0010_0001u32.to_be_bytes());
        png_chunk(&mut out, b"IDAT", &idat);
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A little-endian TIFF block with one IFD entry: Orientation = `value`.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut t = b"II*\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&0u32.to_le_bytes());
        t
    }

    #[test]
    fn one_pixel_is_not_enlarged() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([200, 10, 10])));
        let t = thumbnail(&png(&img), SMALL).unwrap();
        assert_eq!((t.width, t.height), (1, 1));
        let back = decode_jpeg(&t).to_rgb8();
        let [r, g, b] = back.get_pixel(0, 0).0;
        assert!(r > 150 && g < 60 && b < 60, "{r} {g} {b}");
    }

    #[test]
    fn a_long_thin_banner_keeps_its_aspect_and_at_least_one_pixel() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(3000, 17, |x, _| Rgb([(x % 256) as u8, 0, 0])));
        let thumbs = thumbnails(&png(&img), &SIZES).unwrap();
        assert_eq!(thumbs.len(), 2);
        assert_eq!((thumbs[0].width, thumbs[0].height), (320, 2));
        assert_eq!((thumbs[1].width, thumbs[1].height), (960, 5));
        for t in &thumbs {
            decode_jpeg(t);
        }
        let tall = DynamicImage::ImageRgb8(RgbImage::new(1, 5000));
        let t = thumbnail(&png(&tall), SMALL).unwrap();
        assert_eq!((t.width, t.height), (1, 320));
    }

    #[test]
    fn sizes_come_back_in_the_order_asked_for() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(2000, 1500, Rgb([10, 120, 30])));
        let bytes = encoded(&img, ImageFormat::Jpeg);
        let thumbs = thumbnails(&bytes, &[SMALL, LARGE, 5000]).unwrap();
        let dims: Vec<(u32, u32)> = thumbs.iter().map(|t| (t.width, t.height)).collect();
        assert_eq!(dims, [(320, 240), (960, 720), (2000, 1500)]);
    }

    #[test]
    fn every_accepted_format_decodes() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(33, 21, |x, y| {
            Rgba([x as u8 * 7, y as u8 * 11, 90, 255])
        }));
        for format in [ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP] {
            let t = thumbnail(&encoded(&img, format), 16).unwrap();
            assert_eq!((t.width, t.height), (16, 10), "{format:?}");
            decode_jpeg(&t);
        }
        let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
        let t = thumbnail(&encoded(&rgb, ImageFormat::Jpeg), 16).unwrap();
        assert_eq!((t.width, t.height), (16, 10));
    }

    #[test]
    fn exif_orientation_turns_a_landscape_jpeg_into_a_portrait_thumbnail() {
        // Stored 80×40, left half red, right half blue; orientation 6 means "rotate 90° clockwise
        // to display", so the thumbnail is 40×80 with red on top.
        let stored =
            RgbImage::from_fn(80, 40, |x, _| if x < 40 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let mut bytes = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
        encoder.set_exif_metadata(exif_orientation(6)).unwrap();
        encoder.write_image(stored.as_raw(), 80, 40, image::ExtendedColorType::Rgb8).unwrap();

        let t = thumbnail(&bytes, SMALL).unwrap();
        assert_eq!((t.width, t.height), (40, 80));
        let shown = decode_jpeg(&t).to_rgb8();
        let top = shown.get_pixel(20, 10).0;
        let bottom = shown.get_pixel(20, 70).0;
        assert!(top[0] > 200 && top[2] < 60, "top should be red: {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom should be blue: {bottom:?}");

        // And scaled: 960 is larger than the image, 20 is not.
        let small = thumbnail(&bytes, 20).unwrap();
        assert_eq!((small.width, small.height), (10, 20));
    }

    #[test]
    fn transparency_becomes_white_not_black() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, Rgba([0, 0, 0, 0])));
        let t = thumbnail(&png(&img), SMALL).unwrap();
        let [r, g, b] = decode_jpeg(&t).to_rgb8().get_pixel(5, 5).0;
        assert!(r > 240 && g > 240 && b > 240, "{r} {g} {b}");
    }

    #[test]
    fn corrupt_and_foreign_input_is_a_client_error() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(200, 200, |x, y| Rgb([x as u8, y as u8, 7])));
        let whole = png(&img);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated png", whole[..whole.len() / 2].to_vec()),
            ("png with garbage pixels", {
                let mut b = whole.clone();
                let mid = b.len() / 2;
                b[mid..mid + 64].fill(0xA5);
                b
            }),
            ("png signature only", b"\x89PNG\r\n\x1a\n".to_vec()),
            ("jpeg markers only", vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            ("not an image", b"%PDF-1.7\n".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in cases {
            let err = thumbnail(&bytes, SMALL).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadRequest, "{what}: {err}");
            assert_eq!(err.code(), "image-undecodable", "{what}: {err}");
            assert!(err.user_message().contains("could not be read"), "{what}");
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // 100000×100000 RGBA would be 40 GB; the file is ~70 bytes.
        let bomb = png_claiming(100_000, 100_000);
        assert!(bomb.len() < 100);
        let started = std::time::Instant::now();
        let err = thumbnail(&bomb, SMALL).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!((err.code(), err.kind()), ("image-too-large", ErrorKind::BadRequest), "{err}");
        assert!(err.user_message().contains("larger than reelbox accepts"));

        // Within each side's limit but over the pixel budget: refused by the pixel count.
        let err = thumbnail(&png_claiming(10_000, 10_000), SMALL).unwrap_err();
        assert_eq!(err.code(), "image-too-large", "{err}");
        assert!(err.user_message().contains("10000×10000"), "{}", err.user_message());

        // A valid header of a size we accept, whose pixels are missing, is merely corrupt.
        let err = thumbnail(&png_claiming(2000, 2000), SMALL).unwrap_err();
        assert_eq!(err.code(), "image-undecodable", "{err}");
    }

    #[test]
    fn a_gif_bomb_is_refused_too() {
        // GIF89a, logical screen 65535×65535, no colour table, one 65535×65535 image, LZW min 2.
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0]);
        gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
        gif.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
        let err = thumbnail(&gif, SMALL).unwrap_err();
        assert_eq!(err.code(), "image-too-large", "{err}");
    }

    #[test]
    fn thumbnails_of_a_file_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.bin");
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1200, 900, Rgb([1, 2, 3])));
        std::fs::write(&path, encoded(&img, ImageFormat::WebP)).unwrap();
        let thumbs = thumbnails_of_file(&path, &SIZES).unwrap();
        assert_eq!(thumbs.iter().map(|t| (t.width, t.height)).collect::<Vec<_>>(), [(320, 240), (960, 720)]);
        let err = thumbnails_of_file(&dir.path().join("missing"), &SIZES).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("thumbnail-failed", ErrorKind::Internal));
        assert!(!err.user_message().contains("missing"), "paths stay in the log");
    }
}
