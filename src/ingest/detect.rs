//! What an upload is, decided from its bytes (never from its name or the client's
//! `Content-Type`), and the names it may be served under.
//!
//! [`detect`] looks at the first [`HEAD_LEN`] bytes and answers with one of the four kinds
//! reelbox keeps, or refuses the file with a message that says what is accepted. Only the formats
//! in the allow-list below pass; everything else (HTML, SVG, XML, scripts, programs, plain ZIP and
//! other archives, fonts, unknown bytes, zero bytes) is refused.
//!
//! ## Markup and polyglots
//!
//! Uploaded bytes are never served as HTML: they go out with the MIME type chosen here and
//! `X-Content-Type-Options: nosniff`. On top of that, two rules make sure no upload can *look*
//! like a web page to a browser that sniffs anyway (the classic GIF/JPEG-with-HTML attacks were
//! old browsers scanning the first few hundred bytes for tags):
//!
//! 1. **Markup at the start is always refused.** After byte-order marks and whitespace, a file
//!    that begins with `<` (HTML, SVG, XML) or `#!` (a script) is refused, whatever follows. This
//!    runs before the format check, so `<html>…%PDF-1.7` (which `infer` would call a PDF, as it
//!    looks for `%PDF` anywhere in the first KiB) is refused too; PDFs must start with `%PDF-`.
//! 2. **Images must not carry markup in their head.** Images are the one kind shown inline by
//!    `<img>` on every page, so an image whose first [`HEAD_LEN`] bytes contain an HTML tag
//!    (`<script`, `<html`, `<!doctype html`, `<svg`, `<iframe`, `<body`, `<object`, `<embed`,
//!    followed by whitespace, `>` or `/`) is refused as [`DetectError::Polyglot`]. Real photos
//!    and graphics do not contain these (EXIF and XMP use other tags), and in compressed pixel
//!    data a chance match is below one in a million. Decoding is not a defence here, since
//!    decoders ignore trailing bytes. Separately, once every byte has arrived, [`check_image`]
//!    decodes an image fully (under the decompression-bomb limits of `library::thumbnails`) and
//!    an image that does not decode is refused: reelbox keeps no picture it cannot show.
//!
//! Video, audio and documents are not scanned: their containers legitimately hold free text (ID3
//! comments, PDF text and XMP, compressed Office XML), they begin with a binary signature no
//! browser sniffs as HTML, documents other than PDF are only ever downloaded (see
//! [`disposition_for`]), and a PDF is handed to the browser's PDF viewer, not to its HTML parser.
//! Rejecting real PDFs that mention `<html>` would be wrong and would protect nothing.
//!
//! ## Names
//!
//! [`sanitise_filename`] turns whatever the client sent into a safe, non-empty base name;
//! [`download_name`] also makes sure the name ends in the detected extension (so a PDF uploaded as
//! `notes.html` is saved as `notes.html.pdf`); [`content_disposition`] builds the RFC 6266 header.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{AppError, ErrorKind};
use crate::library::thumbnails::{self, ThumbnailError};

/// The kind of a media item; one type for detection and the library.
pub use crate::library::media::MediaKind;

/// How many bytes [`detect`] wants from the start of the file. Fewer is fine (a file shorter than
/// this is passed whole); more is allowed and only makes the image markup check look further.
pub const HEAD_LEN: usize = 8 * 1024;

/// Legacy Office files (OLE2 compound files) name their type in a directory sector that may sit
/// anywhere in the file, so [`detect_file`] reads them whole, up to this size.
pub const MAX_COMPOUND_FILE_BYTES: u64 = 64 * 1024 * 1024;

const OLE2_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// What an accepted upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub kind: MediaKind,
    /// The type the bytes are served with.
    pub mime: &'static str,
    /// Without the dot, lowercase; what a download's name should end in.
    pub extension: &'static str,
}

impl Detected {
    pub fn disposition(&self) -> Disposition {
        disposition_for(self.kind, self.mime)
    }
}

/// One accepted format: `infer`'s extension for it, and what we call and serve it as.
struct Format {
    infer_ext: &'static str,
    kind: MediaKind,
    mime: &'static str,
    extension: &'static str,
}

const fn f(infer_ext: &'static str, kind: MediaKind, mime: &'static str, extension: &'static str) -> Format {
    Format { infer_ext, kind, mime, extension }
}

use MediaKind::{Audio, Document, Image, Video};

/// The allow-list. Keyed by `infer`'s extension because its MIME types are not unique
/// (EXE and DLL share one). MPEG-TS is not known to `infer` and is matched by [`mpeg_ts`].
const FORMATS: &[Format] = &[
    f("mp4", Video, "video/mp4", "mp4"),
    f("m4v", Video, "video/mp4", "m4v"),
    f("mov", Video, "video/quicktime", "mov"),
    f("webm", Video, "video/webm", "webm"),
    f("mkv", Video, "video/x-matroska", "mkv"),
    f("avi", Video, "video/x-msvideo", "avi"),
    f("mpg", Video, "video/mpeg", "mpg"),
    f("mp3", Audio, "audio/mpeg", "mp3"),
    f("m4a", Audio, "audio/mp4", "m4a"),
    f("aac", Audio, "audio/aac", "aac"),
    f("wav", Audio, "audio/wav", "wav"),
    f("ogg", Audio, "audio/ogg", "ogg"),
    f("opus", Audio, "audio/ogg", "opus"),
    f("flac", Audio, "audio/flac", "flac"),
    f("jpg", Image, "image/jpeg", "jpg"),
    f("png", Image, "image/png", "png"),
    f("gif", Image, "image/gif", "gif"),
    f("webp", Image, "image/webp", "webp"),
    f("pdf", Document, "application/pdf", "pdf"),
    f("docx", Document, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    f("xlsx", Document, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    f("pptx", Document, "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
    f("odt", Document, "application/vnd.oasis.opendocument.text", "odt"),
    f("ods", Document, "application/vnd.oasis.opendocument.spreadsheet", "ods"),
    f("odp", Document, "application/vnd.oasis.opendocument.presentation", "odp"),
    f("doc", Document, "application/msword", "doc"),
    f("xls", Document, "application/vnd.ms-excel", "xls"),
    f("ppt", Document, "application/vnd.ms-powerpoint", "ppt"),
];

/// For messages: what each kind accepts, in words a teacher recognises.
fn accepted_formats(kind: MediaKind) -> &'static str {
    match kind {
        Video => "video (MP4, MOV, WebM, MKV, AVI, MPEG, MPEG-TS)",
        Audio => "audio (MP3, M4A, AAC, WAV, Ogg, Opus, FLAC)",
        Image => "images (JPEG, PNG, GIF, WebP)",
        Document => "documents (PDF, Word, Excel, PowerPoint, OpenDocument)",
    }
}

/// "reelbox accepts video (…), audio (…), images (…) and documents (…)."
pub fn accepted_sentence(allowed: &[MediaKind]) -> String {
    let parts: Vec<&str> =
        MediaKind::ALL.iter().filter(|k| allowed.contains(k)).map(|&k| accepted_formats(k)).collect();
    match parts.as_slice() {
        [] => "This server does not accept uploads at the moment.".into(),
        [one] => format!("reelbox accepts {one}."),
        [init @ .., last] => format!("reelbox accepts {} and {last}.", init.join(", ")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the file is empty")]
    Empty,
    #[error("unsupported file type ({}); allowed kinds: {}", found.as_deref().unwrap_or("not recognised"), kinds_list(allowed))]
    Unsupported {
        /// What the file looks like, for the person ("a ZIP archive", "an HTML page"); `None` if
        /// nothing was recognised.
        found: Option<String>,
        allowed: Vec<MediaKind>,
    },
    #[error("{format} image with HTML or script markup in its first bytes (possible polyglot)")]
    Polyglot { format: &'static str },
    #[error("image does not decode: {0}")]
    UnreadableImage(ThumbnailError),
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn kinds_list(kinds: &[MediaKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

impl AppError for DetectError {
    fn code(&self) -> &'static str {
        match self {
            DetectError::Empty => "empty-file",
            DetectError::Unsupported { .. } => "unsupported-type",
            DetectError::Polyglot { .. } => "suspicious-content",
            DetectError::UnreadableImage(e) => e.code(),
            DetectError::Io { .. } => "upload-read-failed",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            DetectError::Empty => ErrorKind::BadRequest,
            DetectError::Unsupported { .. } | DetectError::Polyglot { .. } => ErrorKind::UnsupportedMediaType,
            // Of an accepted type, but broken: well-formed request, unusable content.
            DetectError::UnreadableImage(e) if e.kind().is_client_error() => ErrorKind::Unprocessable,
            DetectError::UnreadableImage(_) => ErrorKind::Internal,
            DetectError::Io { .. } => ErrorKind::Internal,
        }
    }

    fn user_message(&self) -> String {
        match self {
            DetectError::Empty => "The file is empty (0 bytes), so there is nothing to upload. \
                                   Check that you picked the right file."
                .into(),
            DetectError::Unsupported { found: Some(found), allowed } => {
                format!("This file is {found}, which cannot be uploaded here. {}", accepted_sentence(allowed))
            }
            DetectError::Unsupported { found: None, allowed } => {
                format!("reelbox could not recognise this type of file. {}", accepted_sentence(allowed))
            }
            DetectError::Polyglot { format } => format!(
                "This file starts like a {format} image but also contains web-page code (HTML or script), \
                 so it was refused. Open it in an image editor and save it again as JPEG or PNG, then \
                 upload that copy."
            ),
            DetectError::UnreadableImage(e) => format!("{} Nothing was stored.", e.user_message()),
            DetectError::Io { .. } => "The server could not read the uploaded file. Please try again, \
                                       and tell your IT administrator if it keeps happening."
                .into(),
        }
    }
}

/// Detect the type of an upload from its first bytes, accepting all four kinds.
/// Pass the first [`HEAD_LEN`] bytes (or the whole file if shorter). Legacy Word, Excel and
/// PowerPoint files (`.doc`, `.xls`, `.ppt`) are only recognised from the whole file; with just a
/// head they are refused like any other OLE2 file (an MSI installer, say): prefer [`detect_file`]
/// once the bytes are on disk, which reads what is needed.
pub fn detect(head: &[u8]) -> Result<Detected, DetectError> {
    detect_among(head, MediaKind::ALL)
}

/// Like [`detect`], but only the kinds in `allowed` pass (the school's configuration); a file of
/// another kind is refused with a message that lists what `allowed` accepts.
pub fn detect_among(head: &[u8], allowed: &[MediaKind]) -> Result<Detected, DetectError> {
    let unsupported = |found: Option<String>| DetectError::Unsupported { found, allowed: allowed.to_vec() };
    if head.is_empty() {
        return Err(DetectError::Empty);
    }
    if let Some(found) = markup_or_script_at_start(head) {
        return Err(unsupported(Some(found.into())));
    }

    let format = match infer::get(head) {
        Some(t) => match FORMATS.iter().find(|f| f.infer_ext == t.extension()) {
            Some(format) => format,
            None if t.extension() == "zip" => match office_open_xml(head) {
                Some(format) => format,
                None => return Err(unsupported(Some(describe_refused(t)))),
            },
            None => return Err(unsupported(Some(describe_refused(t)))),
        },
        None => match mpeg_ts(head) {
            Some(format) => format,
            None => return Err(unsupported(None)),
        },
    };
    // `infer` finds `%PDF` anywhere in the first KiB; only a PDF that starts as one is accepted.
    if format.extension == "pdf" && !trim_start_whitespace(head).starts_with(b"%PDF-") {
        return Err(unsupported(Some("a PDF with unexpected bytes before its header".into())));
    }
    if !allowed.contains(&format.kind) {
        let found = format!("{} {}", format.extension.to_ascii_uppercase(), format.kind.as_str());
        return Err(unsupported(Some(found)));
    }
    if format.kind == Image && contains_markup(head) {
        return Err(DetectError::Polyglot { format: image_format_name(format.extension) });
    }
    Ok(Detected { kind: format.kind, mime: format.mime, extension: format.extension })
}

/// Detect the type of the file at `path` (an upload on disk), reading as much of it as detection
/// needs: [`HEAD_LEN`] bytes, or the whole file for legacy Office documents.
pub fn detect_file(path: &Path, allowed: &[MediaKind]) -> Result<Detected, DetectError> {
    let io_err = |source| DetectError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_err)?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    let mut reader = file.take(HEAD_LEN as u64);
    reader.read_to_end(&mut head).map_err(io_err)?;
    if head.starts_with(&OLE2_MAGIC) {
        let mut file = reader.into_inner();
        let mut rest = Vec::new();
        (&mut file).take(MAX_COMPOUND_FILE_BYTES - HEAD_LEN as u64).read_to_end(&mut rest).map_err(io_err)?;
        head.extend_from_slice(&rest);
    }
    detect_among(&head, allowed)
}

/// An upload detected as an image must decode, whole, within the limits of
/// `library::thumbnails` (header and pixels): a truncated, corrupt or over-large image is
/// refused as [`DetectError::UnreadableImage`]. Other kinds pass untouched. Blocking and
/// CPU-bound (a full decode): call it where [`detect_file`] is called, on the blocking pool.
pub fn check_image(path: &Path, detected: &Detected) -> Result<(), DetectError> {
    if detected.kind != Image {
        return Ok(());
    }
    match thumbnails::check_file(path) {
        Ok(_) => Ok(()),
        Err(ThumbnailError::Io { path, source }) => Err(DetectError::Io { path, source }),
        Err(e) => Err(DetectError::UnreadableImage(e)),
    }
}

fn image_format_name(extension: &str) -> &'static str {
    match extension {
        "jpg" => "JPEG",
        "png" => "PNG",
        "gif" => "GIF",
        "webp" => "WebP",
        _ => "picture",
    }
}

/// A phrase for a refused type `infer` knows: "a ZIP archive", "a program (ELF)", "a TIFF file".
fn describe_refused(t: infer::Type) -> String {
    let ext = t.extension();
    match (t.matcher_type(), ext) {
        (_, "html") => "an HTML page".into(),
        (_, "xml") => "an XML file".into(),
        (_, "sh") => "a script".into(),
        (_, "zip") => "a ZIP archive (only Word, Excel, PowerPoint and OpenDocument files are accepted \
                       from the ZIP family)"
            .into(),
        (_, "epub") => "an e-book (EPUB)".into(),
        (_, "msi") => "an installer or an unrecognised Office file".into(),
        (infer::MatcherType::App, _) => format!("a program or system file ({})", ext.to_ascii_uppercase()),
        (infer::MatcherType::Archive, _) => format!("an archive or other {} file", ext.to_ascii_uppercase()),
        (infer::MatcherType::Font, _) => format!("a font ({})", ext.to_ascii_uppercase()),
        (infer::MatcherType::Image, _) => format!("a {} image", ext.to_ascii_uppercase()),
        (infer::MatcherType::Video, _) => format!("a {} video", ext.to_ascii_uppercase()),
        (infer::MatcherType::Audio, _) => format!("a {} audio file", ext.to_ascii_uppercase()),
        _ => format!("a {} file", ext.to_ascii_uppercase()),
    }
}

/// Word, Excel and PowerPoint files that `infer` calls plain ZIP. It decides from the names of the
/// third and fourth entries, which fits what Microsoft Office writes but not LibreOffice (which
/// puts `docProps/` early and `[Content_Types].xml` last). Here: the local file headers in the
/// head name the package relationships (`_rels/.rels`) or `[Content_Types].xml`, and a part
/// under `word/`, `xl/` or `ppt/`; the first such part decides.
fn office_open_xml(head: &[u8]) -> Option<&'static Format> {
    let names = zip_entry_names(head);
    let is_package = names.iter().any(|n| *n == b"[Content_Types].xml" || *n == b"_rels/.rels");
    if !is_package {
        return None;
    }
    let infer_ext = names.iter().find_map(|n| {
        if n.starts_with(b"word/") {
            Some("docx")
        } else if n.starts_with(b"xl/") {
            Some("xlsx")
        } else if n.starts_with(b"ppt/") {
            Some("pptx")
        } else {
            None
        }
    })?;
    FORMATS.iter().find(|f| f.infer_ext == infer_ext)
}

/// The entry names of the ZIP local file headers found in `head`. Headers are found by their
/// signature rather than by skipping entry data, because entries written with a data descriptor
/// carry no size in their header.
fn zip_entry_names(head: &[u8]) -> Vec<&[u8]> {
    const SIGNATURE: &[u8] = b"PK\x03\x04";
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(found) = head.get(at..).and_then(|rest| rest.windows(4).position(|w| w == SIGNATURE)) {
        let header = at + found;
        let name = head.get(header + 26..header + 28).and_then(|len| {
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            head.get(header + 30..header + 30 + len)
        });
        if let Some(name) = name {
            names.push(name);
        }
        at = header + 4;
    }
    names
}

/// MPEG transport streams (`.ts`, 188-byte packets) and camcorder M2TS/MTS (192-byte packets with
/// a 4-byte timestamp first), which `infer` does not know: the sync byte 0x47 must recur at every
/// packet start in the head, at least three times.
fn mpeg_ts(head: &[u8]) -> Option<&'static Format> {
    const TS: Format = f("ts", Video, "video/mp2t", "ts");
    const M2TS: Format = f("m2ts", Video, "video/mp2t", "m2ts");
    let synced = |offset: usize, stride: usize| {
        let starts: Vec<usize> = (offset..head.len()).step_by(stride).collect();
        starts.len() >= 3 && starts.iter().all(|&i| head[i] == 0x47)
    };
    if synced(0, 188) {
        Some(&TS)
    } else if synced(4, 192) {
        Some(&M2TS)
    } else {
        None
    }
}

fn trim_start_whitespace(mut buf: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = buf {
        if matches!(first, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ') {
            buf = rest;
        } else {
            break;
        }
    }
    buf
}

/// Rule 1 of the module docs: what a file that starts with markup or a shebang looks like, as a
/// phrase for the person; `None` if it does not.
fn markup_or_script_at_start(head: &[u8]) -> Option<&'static str> {
    let head = &head[..head.len().min(HEAD_LEN)];
    // UTF-8 and UTF-16 byte-order marks; for UTF-16, drop the zero bytes so `<\0s\0v\0g\0` reads
    // as `<svg`.
    let body: Vec<u8> = if let Some(rest) = head.strip_prefix(b"\xEF\xBB\xBF") {
        rest.to_vec()
    } else if let Some(rest) = head.strip_prefix(b"\xFF\xFE").or_else(|| head.strip_prefix(b"\xFE\xFF")) {
        rest.iter().copied().filter(|&b| b != 0).collect()
    } else {
        head.to_vec()
    };
    let start = trim_start_whitespace(&body);
    if start.starts_with(b"#!") {
        return Some("a script");
    }
    if !start.starts_with(b"<") {
        return None;
    }
    let lower = start.iter().take(HEAD_LEN).map(u8::to_ascii_lowercase).collect::<Vec<u8>>();
    if find_tag(&lower, b"<svg").is_some() {
        Some("an SVG drawing (SVG can carry scripts; export it as PNG instead)")
    } else if lower.starts_with(b"<?xml") {
        Some("an XML file")
    } else {
        Some("an HTML page")
    }
}

/// The tags whose presence in an image's head makes it a suspected polyglot. Lowercase.
const MARKUP_TAGS: &[&[u8]] =
    &[b"<script", b"<html", b"<!doctype html", b"<svg", b"<iframe", b"<body", b"<object", b"<embed"];

/// Whether `bytes` contain an HTML tag from [`MARKUP_TAGS`] (any case) followed by a byte that
/// ends a tag name (whitespace, `>` or `/`), as an HTML parser would see it.
pub fn contains_markup(bytes: &[u8]) -> bool {
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    MARKUP_TAGS.iter().any(|tag| find_tag(&lower, tag).is_some())
}

fn find_tag(lower: &[u8], tag: &[u8]) -> Option<usize> {
    lower.windows(tag.len() + 1).position(|w| {
        w.starts_with(tag) && matches!(w[tag.len()], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'>' | b'/')
    })
}

/// Whether a response shows the content in the browser or saves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Inline,
    Attachment,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }
}

/// Images, video, audio and PDFs are shown in the browser; every other document is downloaded.
pub fn disposition_for(kind: MediaKind, mime: &str) -> Disposition {
    match kind {
        Image | Video | Audio => Disposition::Inline,
        Document if mime == "application/pdf" => Disposition::Inline,
        Document => Disposition::Attachment,
    }
}

/// Longest file name [`sanitise_filename`] returns, in bytes (file systems allow 255).
pub const MAX_FILENAME_BYTES: usize = 200;

/// Extensions up to this long are kept when a long name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9",
    "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A safe base name from whatever the client sent: no directories (`/` or `\`), no `..`, no
/// control, bidirectional-override or zero-width characters, no characters Windows forbids, no
/// leading dots, no trailing dots or spaces, no reserved Windows device names, at most
/// [`MAX_FILENAME_BYTES`] (keeping the extension), never empty (`file`).
pub fn sanitise_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format_char(c))
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let mut out = trim_name(&cleaned).to_string();

    let stem = out.split('.').next().unwrap_or_default().trim_end();
    if WINDOWS_RESERVED.iter().any(|r| stem.eq_ignore_ascii_case(r)) {
        out.insert(0, '_');
    }

    if out.len() > MAX_FILENAME_BYTES {
        out = shorten(&out);
    }
    if out.is_empty() { "file".into() } else { out }
}

fn trim_name(s: &str) -> &str {
    s.trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

fn is_invisible_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn shorten(name: &str) -> String {
    let ext = match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= MAX_EXTENSION_BYTES
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(ext)
        }
        _ => None,
    };
    let budget = match ext {
        Some(ext) => MAX_FILENAME_BYTES - ext.len() - 1,
        None => MAX_FILENAME_BYTES,
    };
    let mut cut = budget.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = trim_name(&name[..cut]);
    match ext {
        Some(ext) if !stem.is_empty() => format!("{stem}.{ext}"),
        Some(ext) => ext.to_string(),
        None => stem.to_string(),
    }
}

/// The name a download is offered under: [`sanitise_filename`], then the detected extension is
/// appended unless the name already ends in it (or a common spelling of it), so the saved file
/// opens in the program that matches its content — `notes.html` holding a PDF becomes
/// `notes.html.pdf`.
pub fn download_name(original: &str, extension: &str) -> String {
    let name = sanitise_filename(original);
    let current = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let same = |e: &str| {
        e == extension
            || matches!(
                (e, extension),
                ("jpeg" | "jpe" | "jfif", "jpg")
                    | ("mpeg" | "mpe" | "vob", "mpg")
                    | ("mts", "m2ts")
                    | ("oga", "ogg")
                    | ("qt", "mov")
            )
    };
    match current {
        Some(e) if same(&e) => name,
        _ => sanitise_filename(&format!("{name}.{extension}")),
    }
}

/// An RFC 6266 `Content-Disposition` value: `attachment; filename="fallback";
/// filename*=UTF-8''percent-encoded`. The name is sanitised here; the ASCII fallback replaces
/// every non-ASCII character (and `%`, which some browsers decode) with `_`.
pub fn content_disposition(disposition: Disposition, name: &str) -> String {
    let name = sanitise_filename(name);
    let fallback: String = name
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '%' { c } else { '_' })
        .collect();
    format!("{}; filename=\"{fallback}\"; filename*=UTF-8''{}", disposition.as_str(), ext_value(&name))
}

/// RFC 8187 `value-chars`: `attr-char` as is, every other byte as `%XX`.
fn ext_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
