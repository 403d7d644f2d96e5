//! Detection tests on real bytes: encoder output, crafted headers, polyglots, names.
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
    pdf.extend_from_slice(b"4 0 obj\n(<html><body><script>text about HTML</script></body></html>)\nendobj\n");
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
    for script in [&b"#!/bin/sh\nrm -rf /\n"[..], b"#!/usr/bin/env python3\n", b"\xEF\xBB\xBF#!/bin/bash\n"] {
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
    assert!(
        message.ends_with(
            "reelbox accepts audio (MP3, M4A, AAC, WAV, Ogg, Opus, FLAC) and images (JPEG, PNG, GIF, WebP)."
        ),
        "{message}"
    );
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
