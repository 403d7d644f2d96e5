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
//!    decoders ignore trailing bytes; the thumbnailer decodes every image fully anyway, and an
//!    image that does not decode should be refused by the caller
//!    (see `library::thumbnails`).
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
            DetectError::Io { .. } => "upload-read-failed",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            DetectError::Empty => ErrorKind::BadRequest,
            DetectError::Unsupported { .. } | DetectError::Polyglot { .. } => ErrorKind::UnsupportedMediaType,
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Cursor;
    use std::process::Command;

    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

    use super::*;

    fn image_bytes(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 37 % 256) as u8, (y * 91 % 256) as u8, ((x ^ y) % 256) as u8])
        }));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
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

    /// A real (stored, uncompressed) ZIP file with these entries in this order.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = u32::try_from(out.len()).unwrap();
            let (len, crc) = (u32::try_from(data.len()).unwrap(), crc32(data));
            let name_len = u16::try_from(name.len()).unwrap();
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
            for v in [crc, len, len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);

            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
            for v in [crc, len, len] {
                central.extend_from_slice(&v.to_le_bytes());
            }
            central.extend_from_slice(&name_len.to_le_bytes());
            central.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let (cd_offset, cd_len) = (u32::try_from(out.len()).unwrap(), u32::try_from(central.len()).unwrap());
        let count = u16::try_from(entries.len()).unwrap();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&cd_len.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#;
    const RELS: &[u8] = br#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>"#;

    /// The entry order Word, Excel and PowerPoint write.
    fn ooxml(dir: &str) -> Vec<u8> {
        let x: &[u8] = b"<?xml version=\"1.0\"?><x/>";
        let (main, rels, styles) =
            (format!("{dir}/main.xml"), format!("{dir}/_rels/main.xml.rels"), format!("{dir}/styles.xml"));
        zip(&[
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", RELS),
            (&main, x),
            (&rels, x),
            (&styles, x),
            ("docProps/core.xml", x),
        ])
    }

    /// The entry order LibreOffice writes: no `[Content_Types].xml` until the end.
    fn ooxml_libreoffice(dir: &str) -> Vec<u8> {
        let x: &[u8] = b"<?xml version=\"1.0\"?><x/>";
        let (main, rels) = (format!("{dir}/main.xml"), format!("{dir}/_rels/main.xml.rels"));
        zip(&[
            ("_rels/.rels", RELS),
            ("docProps/app.xml", x),
            ("docProps/core.xml", x),
            (&rels, x),
            (&main, x),
            ("[Content_Types].xml", CONTENT_TYPES),
        ])
    }
    fn odf(mime: &str) -> Vec<u8> {
        zip(&[
            ("mimetype", mime.as_bytes()),
            ("content.xml", b"<?xml version=\"1.0\"?><office:document-content/>"),
        ])
    }

    const PDF: &[u8] = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
        2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

    fn mp4_head() -> Vec<u8> {
        let mut b = vec![0, 0, 0, 0x20];
        b.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2avc1mp41");
        b.extend_from_slice(&[0, 0, 0, 8]);
        b.extend_from_slice(b"free");
        b
    }

    fn wav() -> Vec<u8> {
        let samples = [0u8; 400];
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&[2, 0, 16, 0]);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(samples.len() as u32).to_le_bytes());
        b.extend_from_slice(&samples);
        b
    }

    fn ok(bytes: &[u8]) -> (MediaKind, &'static str, &'static str) {
        match detect(bytes) {
            Ok(d) => (d.kind, d.mime, d.extension),
            Err(e) => panic!("expected acceptance, got {e}"),
        }
    }

    /// Refused as an unsupported type; returns what the person is told.
    fn refused(bytes: &[u8]) -> String {
        let err = detect(bytes).unwrap_err();
        assert_eq!(err.code(), "unsupported-type", "{err}");
        assert_eq!(err.kind(), ErrorKind::UnsupportedMediaType);
        let message = err.user_message();
        assert!(message.contains("reelbox accepts video (MP4"), "{message}");
        assert!(message.contains("images (JPEG, PNG, GIF, WebP) and documents (PDF"), "{message}");
        message
    }

    #[test]
    fn images_made_by_real_encoders() {
        assert_eq!(ok(&image_bytes(ImageFormat::Png, 5, 3)), (Image, "image/png", "png"));
        assert_eq!(ok(&image_bytes(ImageFormat::Jpeg, 17, 9)), (Image, "image/jpeg", "jpg"));
        assert_eq!(ok(&image_bytes(ImageFormat::Gif, 1, 1)), (Image, "image/gif", "gif"));
        assert_eq!(ok(&image_bytes(ImageFormat::WebP, 64, 64)), (Image, "image/webp", "webp"));
        // Only the head is needed.
        let big = image_bytes(ImageFormat::Png, 300, 300);
        assert!(big.len() > HEAD_LEN);
        assert_eq!(ok(&big[..HEAD_LEN]).0, Image);
    }

    #[test]
    fn other_image_formats_are_refused() {
        let tiff = image::ImageFormat::Tiff; // not compiled into `image` here; craft the header
        let _ = tiff;
        let message = refused(b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0");
        assert!(message.contains("TIF"), "{message}");
        refused(b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0");
    }

    #[test]
    fn documents() {
        assert_eq!(ok(PDF), (Document, "application/pdf", "pdf"));
        assert_eq!(ok(b"\n\r\n%PDF-1.7\n").0, Document, "whitespace before the header is fine");
        assert_eq!(ok(&ooxml("word")).2, "docx");
        assert_eq!(ok(&ooxml("xl")).2, "xlsx");
        assert_eq!(ok(&ooxml("ppt")).2, "pptx");
        assert_eq!(ok(&ooxml_libreoffice("word")).2, "docx");
        assert_eq!(ok(&ooxml_libreoffice("xl")).2, "xlsx");
        assert_eq!(ok(&ooxml_libreoffice("ppt")).2, "pptx");
        assert_eq!(
            ok(&ooxml("word")).1,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(ok(&odf("application/vnd.oasis.opendocument.text")).2, "odt");
        assert_eq!(ok(&odf("application/vnd.oasis.opendocument.spreadsheet")).2, "ods");
        assert_eq!(ok(&odf("application/vnd.oasis.opendocument.presentation")).2, "odp");
        for (_, _, ext) in [ok(PDF), ok(&ooxml("xl"))] {
            assert!(FORMATS.iter().any(|f| f.extension == ext));
        }
        assert_eq!(detect(PDF).unwrap().disposition(), Disposition::Inline);
        assert_eq!(detect(&ooxml("word")).unwrap().disposition(), Disposition::Attachment);
    }

    #[test]
    fn a_pdf_may_mention_html_and_script() {
        let mut pdf = PDF.to_vec();
        pdf.extend_from_slice(b"3 0 obj\n<< /S /JavaScript /JS (app.alert\\(1\\)) >>\nendobj\n");
        pdf.extend_from_slice(
            b"4 0 obj\n(<html><body><script>text about HTML</script></body></html>)\nendobj\n",
        );
        assert_eq!(ok(&pdf).2, "pdf");
    }

    #[test]
    fn plain_zip_and_other_archives_are_refused() {
        let plain = zip(&[("notes.txt", b"hello"), ("word/document.xml", b"<x/>")]);
        let message = refused(&plain);
        assert!(message.contains("ZIP archive"), "{message}");
        // A zip with an OOXML-looking first entry but no Office parts is a zip.
        refused(&zip(&[("[Content_Types].xml", CONTENT_TYPES), ("a.txt", b"a"), ("b.txt", b"b")]));
        // ODF needs its mimetype entry first, naming an ODF type.
        refused(&zip(&[("mimetype", b"application/x-something"), ("content.xml", b"<x/>")]));
        // EPUB is a zip too.
        refused(&zip(&[("mimetype", b"application/epub+zip"), ("META-INF/container.xml", b"<x/>")]));
        refused(b"\x1f\x8b\x08\0\0\0\0\0\0\x03"); // gzip
        refused(b"Rar!\x1a\x07\x01\0"); // rar
        refused(b"7z\xbc\xaf\x27\x1c\0\x04"); // 7z
    }

    #[test]
    fn programs_and_scripts_are_refused() {
        // This test binary is a real executable (ELF here, Mach-O or PE elsewhere).
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let message = refused(&exe[..HEAD_LEN.min(exe.len())]);
        assert!(message.contains("program"), "{message}");
        let mut pe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
        pe.resize(128, 0);
        assert!(refused(&pe).contains("program"));
        refused(b"\xcf\xfa\xed\xfe\x07\0\0\x01\x03\0\0\0"); // Mach-O 64
        let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
        elf.resize(64, 0);
        refused(&elf);
        for script in
            [&b"#!/bin/sh\nrm -rf /\n"[..], b"#!/usr/bin/env python3\n", b"\xEF\xBB\xBF#!/bin/bash\n"]
        {
            assert!(refused(script).contains("a script"), "{script:?}");
        }
    }

    #[test]
    fn html_svg_and_xml_are_refused_however_they_start() {
        let cases: &[(&[u8], &str)] = &[
            (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
            (b"<html><script>alert(1)</script>", "HTML"),
            (b"  \r\n\t<ScRiPt>alert(1)</script>", "HTML"),
            (b"\xEF\xBB\xBF<html>", "HTML"),
            (b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>", "SVG"),
            (b"<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>", "SVG"),
            (b"<?xml version=\"1.0\"?><note/>", "XML"),
            (b"<p>just a paragraph", "HTML"),
            (b"<", "HTML"),
            // UTF-16 LE with a byte-order mark.
            (b"\xFF\xFE<\0h\0t\0m\0l\0>\0", "HTML"),
            // `infer` would call this a PDF: it finds `%PDF` anywhere in the first KiB.
            (b"<html><body onload=alert(1)>%PDF-1.4\n", "HTML"),
        ];
        for (bytes, what) in cases {
            let message = refused(bytes);
            assert!(message.contains(what), "{bytes:?}: {message}");
        }
        // Not markup at the start, but a PDF that does not start as one is still refused.
        let message = refused(b"alert(1)//\n%PDF-1.4\n");
        assert!(message.contains("PDF"), "{message}");
    }

    #[test]
    fn polyglot_images_are_refused() {
        // A real GIF with an HTML page appended (the classic GIF/HTML polyglot).
        let mut gif = image_bytes(ImageFormat::Gif, 2, 2);
        gif.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
        let err = detect(&gif).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("suspicious-content", ErrorKind::UnsupportedMediaType));
        assert!(
            err.user_message().contains("GIF image but also contains web-page code"),
            "{}",
            err.user_message()
        );

        // GIF header whose "pixel data" is a script: GIF89a/*...*/=alert(1)
        let mut gifjs = b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;<script src=x></script>".to_vec();
        gifjs.extend_from_slice(&[0; 16]);
        assert_eq!(detect(&gifjs).unwrap_err().code(), "suspicious-content");

        // A JPEG with `<svg onload=…>` in a COM segment right after SOI.
        let jpeg = image_bytes(ImageFormat::Jpeg, 8, 8);
        let comment = b"<SVG onload=alert(1)>";
        let mut poly = jpeg[..2].to_vec();
        poly.extend_from_slice(&[0xFF, 0xFE, 0, u8::try_from(comment.len() + 2).unwrap()]);
        poly.extend_from_slice(comment);
        poly.extend_from_slice(&jpeg[2..]);
        assert!(image::load_from_memory(&poly).is_ok(), "the polyglot is a valid JPEG");
        assert_eq!(detect(&poly).unwrap_err().code(), "suspicious-content");

        // A tag name must end like a tag for it to count: `<svgfoo` and `<html5` are not tags.
        let mut benign = image_bytes(ImageFormat::Png, 4, 4);
        benign.extend_from_slice(b"tEXt<svgfoo <html5 <scripting");
        assert_eq!(ok(&benign).0, Image);

        // Markup beyond the head is not seen (and the file is still served only as an image).
        let mut late = image_bytes(ImageFormat::Png, 4, 4);
        late.resize(HEAD_LEN, 0);
        late.extend_from_slice(b"<script>alert(1)</script>");
        assert_eq!(ok(&late[..HEAD_LEN]).0, Image);
        assert!(contains_markup(&late), "callers can scan a whole image with contains_markup");
    }

    #[test]
    fn zero_bytes_and_tiny_inputs() {
        let err = detect(b"").unwrap_err();
        assert_eq!((err.code(), err.kind()), ("empty-file", ErrorKind::BadRequest));
        assert!(err.user_message().contains("empty"));
        for tiny in [&b"\0"[..], b"G", b"GI", b"\xff\xd8", b"PK", b"PK\x03\x04", b"RIFF", b"%PDF"] {
            let err = detect(tiny).unwrap_err();
            assert_eq!(err.code(), "unsupported-type", "{tiny:?}");
        }
        let message = refused(&[0x13, 0x37, 0x00, 0x42]);
        assert!(message.starts_with("reelbox could not recognise"), "{message}");
        // A bare signature passes detection; the thumbnailer's full decode is what refuses it.
        for bare in [&b"GIF"[..], b"\x89PNG"] {
            assert_eq!(ok(bare).0, Image);
            assert!(crate::library::thumbnails::thumbnail(bare, 320).is_err());
        }
    }

    #[test]
    fn no_prefix_of_a_real_file_panics() {
        let samples = [
            image_bytes(ImageFormat::Png, 3, 3),
            image_bytes(ImageFormat::Jpeg, 3, 3),
            image_bytes(ImageFormat::WebP, 3, 3),
            ooxml("word"),
            odf("application/vnd.oasis.opendocument.text"),
            PDF.to_vec(),
            mp4_head(),
            wav(),
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x3E\0\x03\0\xFE\xFF".to_vec(),
        ];
        for sample in &samples {
            for len in 0..=sample.len() {
                let _ = detect(&sample[..len]);
            }
        }
    }

    #[test]
    fn video_and_audio_headers() {
        assert_eq!(ok(&mp4_head()), (Video, "video/mp4", "mp4"));
        assert_eq!(ok(&wav()), (Audio, "audio/wav", "wav"));
        assert_eq!(ok(b"ID3\x04\0\0\0\0\0\x0fTIT2\0\0\0\x05\0\0\0abcd").2, "mp3");
        assert_eq!(ok(b"fLaC\0\0\0\x22").2, "flac");
        // MPEG-TS: sync byte every 188 bytes.
        let mut ts = vec![0u8; 188 * 4];
        for i in 0..4 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(ok(&ts), (Video, "video/mp2t", "ts"));
        ts[188 * 2] = 0;
        refused(&ts);
        // Windows Media and Flash video are not accepted.
        refused(b"0&\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\0\xaa\0\x62\xce\x6c");
        refused(b"FLV\x01\x05\0\0\0\x09");
    }

    #[test]
    fn the_allowed_kinds_are_configurable() {
        let only_docs = [Document];
        assert_eq!(detect_among(PDF, &only_docs).unwrap().kind, Document);
        let err = detect_among(&mp4_head(), &only_docs).unwrap_err();
        assert_eq!(err.code(), "unsupported-type");
        let message = err.user_message();
        assert_eq!(
            message,
            "This file is MP4 video, which cannot be uploaded here. reelbox accepts documents (PDF, Word, \
             Excel, PowerPoint, OpenDocument)."
        );
        let message = detect_among(&mp4_head(), &[Image, Audio]).unwrap_err().user_message();
        assert!(message.ends_with("reelbox accepts audio (MP3, M4A, AAC, WAV, Ogg, Opus, FLAC) and images (JPEG, PNG, GIF, WebP)."), "{message}");
        assert_eq!(
            accepted_sentence(MediaKind::ALL),
            "reelbox accepts video (MP4, MOV, WebM, MKV, AVI, MPEG, MPEG-TS), audio (MP3, M4A, AAC, WAV, Ogg, \
             Opus, FLAC), images (JPEG, PNG, GIF, WebP) and documents (PDF, Word, Excel, PowerPoint, OpenDocument)."
        );
        assert!(detect_among(PDF, &[]).unwrap_err().user_message().contains("does not accept uploads"));
    }

    #[test]
    fn detect_file_reads_what_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        let mut png = image_bytes(ImageFormat::Png, 200, 200);
        assert!(png.len() > HEAD_LEN);
        std::fs::write(&path, &png).unwrap();
        assert_eq!(detect_file(&path, MediaKind::ALL).unwrap().extension, "png");
        png.truncate(0);
        std::fs::write(&path, &png).unwrap();
        assert_eq!(detect_file(&path, MediaKind::ALL).unwrap_err().code(), "empty-file");
        let err = detect_file(&dir.path().join("missing"), MediaKind::ALL).unwrap_err();
        assert_eq!((err.code(), err.kind()), ("upload-read-failed", ErrorKind::Internal));
        // An OLE2 compound file that is not a Word/Excel/PowerPoint document (an MSI, say).
        let mut ole = OLE2_MAGIC.to_vec();
        ole.resize(HEAD_LEN * 2, 0);
        std::fs::write(&path, &ole).unwrap();
        assert_eq!(detect_file(&path, MediaKind::ALL).unwrap_err().code(), "unsupported-type");
    }

    /// Real encoder output: ffmpeg writes each container, and detection must agree.
    #[test]
    fn real_audio_and_video_from_ffmpeg() {
        let Ok(out) = Command::new("ffmpeg").arg("-version").output() else {
            panic!("this test needs ffmpeg: install it with `apt-get install ffmpeg` (or run .ci/run)");
        };
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let video = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5"];
        let audio = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5"];
        let both: Vec<&str> = video.iter().chain(audio.iter()).copied().collect();
        /// Output file, ffmpeg input arguments, codec arguments, expected extension and kind.
        type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a str, MediaKind);
        let cases: &[Case] = &[
            ("a.mp4", &both, &["-c:v", "libx264", "-c:a", "aac"], "mp4", Video),
            ("a.mov", &both, &["-c:v", "libx264", "-c:a", "aac"], "mov", Video),
            ("a.webm", &both, &["-c:v", "libvpx", "-c:a", "libopus"], "webm", Video),
            ("a.mkv", &both, &["-c:v", "libx264", "-c:a", "aac"], "mkv", Video),
            ("a.avi", &both, &["-c:v", "mpeg4", "-c:a", "libmp3lame"], "avi", Video),
            ("a.ts", &both, &["-c:v", "libx264", "-c:a", "aac"], "ts", Video),
            ("a.mpg", &both, &["-c:v", "mpeg2video", "-c:a", "mp2"], "mpg", Video),
            ("a.mp3", &audio, &["-c:a", "libmp3lame"], "mp3", Audio),
            ("a.m4a", &audio, &["-c:a", "aac"], "m4a", Audio),
            ("a.aac", &audio, &["-c:a", "aac"], "aac", Audio),
            ("a.wav", &audio, &[], "wav", Audio),
            ("a.ogg", &audio, &["-c:a", "libvorbis"], "ogg", Audio),
            ("a.opus", &audio, &["-c:a", "libopus"], "opus", Audio),
            ("a.flac", &audio, &["-c:a", "flac"], "flac", Audio),
        ];
        for (name, input, codec, extension, kind) in cases {
            let path = dir.path().join(name);
            let out = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(*input)
                .args(*codec)
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "ffmpeg {name}: {}", String::from_utf8_lossy(&out.stderr));
            let detected = detect_file(&path, MediaKind::ALL).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((detected.kind, detected.extension), (*kind, *extension), "{name}");
            // Renamed to something misleading, it is still what it is.
            let renamed = dir.path().join("lesson.pdf.exe");
            std::fs::rename(&path, &renamed).unwrap();
            assert_eq!(detect_file(&renamed, MediaKind::ALL).unwrap(), detected);
        }
    }

    #[test]
    fn path_traversal_and_hostile_file_names() {
        let cases: &[(&str, &str)] = &[
            ("../../etc/passwd", "passwd"),
            ("..\\..\\Windows\\System32\\drivers\\etc\\hosts", "hosts"),
            ("C:\\Users\\teacher\\Desktop\\Lesson 1.pdf", "Lesson 1.pdf"),
            ("/var/lib/reelbox/reelbox.db", "reelbox.db"),
            ("..", "file"),
            ("../", "file"),
            ("....//....//x.png", "x.png"),
            ("", "file"),
            ("   ", "file"),
            ("/", "file"),
            (".htaccess", "htaccess"),
            ("...hidden.txt", "hidden.txt"),
            ("name.", "name"),
            ("name. . ", "name"),
            ("a\0b\r\nc.pdf", "abc.pdf"),
            ("evil\u{202E}fdp.exe", "evilfdp.exe"),
            ("zero\u{200B}width.png", "zerowidth.png"),
            ("quote\"; filename=x.html", "quote_; filename=x.html"),
            ("a<b>c:d|e?f*.jpg", "a_b_c_d_e_f_.jpg"),
            ("tab\there.pdf", "tabhere.pdf"),
            ("CON", "_CON"),
            ("con.txt", "_con.txt"),
            ("Lpt1.tar.gz", "_Lpt1.tar.gz"),
            ("console.log", "console.log"),
            ("Übung 1 – Brüche.pdf", "Übung 1 – Brüche.pdf"),
            ("日本語の資料.docx", "日本語の資料.docx"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitise_filename(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.pdf", "a".repeat(500));
        let s = sanitise_filename(&long);
        assert_eq!(s.len(), MAX_FILENAME_BYTES);
        assert!(s.ends_with("aaa.pdf"));
        // Multi-byte characters are not cut in half.
        let long = format!("{}.docx", "ü".repeat(300));
        let s = sanitise_filename(&long);
        assert!(s.len() <= MAX_FILENAME_BYTES && s.ends_with("üü.docx"), "{s}");
        // No usable extension: cut anywhere.
        let long = "é".repeat(300);
        assert!(sanitise_filename(&long).len() <= MAX_FILENAME_BYTES);
        let long = format!("{}.{}", "b".repeat(300), "x".repeat(40));
        assert_eq!(sanitise_filename(&long).len(), MAX_FILENAME_BYTES);
        // A reserved name survives shortening, prefixed.
        assert!(sanitise_filename(&format!("con.{}", "y".repeat(300))).starts_with("_con."));
    }

    #[test]
    fn download_names_end_in_the_detected_extension() {
        assert_eq!(download_name("notes.html", "pdf"), "notes.html.pdf");
        assert_eq!(download_name("Lesson 3.PDF", "pdf"), "Lesson 3.PDF");
        assert_eq!(download_name("holiday.jpeg", "jpg"), "holiday.jpeg");
        assert_eq!(download_name("recording", "mp4"), "recording.mp4");
        assert_eq!(download_name("../../", "docx"), "file.docx");
        assert_eq!(download_name("setup.exe", "zip"), "setup.exe.zip");
    }

    #[test]
    fn content_disposition_headers() {
        assert_eq!(
            content_disposition(Disposition::Attachment, "report.docx"),
            "attachment; filename=\"report.docx\"; filename*=UTF-8''report.docx"
        );
        assert_eq!(
            content_disposition(Disposition::Inline, "Übung 1 – Brüche.pdf"),
            "inline; filename=\"_bung 1 _ Br_che.pdf\"; filename*=UTF-8''%C3%9Cbung%201%20%E2%80%93%20Br%C3%BCche.pdf"
        );
        // Header injection: quotes, CR/LF, `;` and `%` cannot break out or be decoded twice.
        let header = content_disposition(Disposition::Attachment, "x\"\r\nSet-Cookie: a=b; 100%25.pdf");
        assert_eq!(
            header,
            "attachment; filename=\"x_Set-Cookie_ a=b; 100_25.pdf\"; filename*=UTF-8''x_Set-Cookie_%20a%3Db%3B%20100%2525.pdf"
        );
        assert!(!header.contains('\r') && !header.contains('\n'));
        assert!(actix_web::http::header::HeaderValue::from_str(&header).is_ok());
        assert_eq!(
            content_disposition(Disposition::Attachment, "../../etc/passwd"),
            "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
        );
        assert_eq!(
            content_disposition(Disposition::Inline, ""),
            "inline; filename=\"file\"; filename*=UTF-8''file"
        );
        assert_eq!(disposition_for(Video, "video/mp4"), Disposition::Inline);
        assert_eq!(disposition_for(Document, "application/msword"), Disposition::Attachment);
    }
}
