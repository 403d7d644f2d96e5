//! What an upload *is*, decided when its last byte arrives, through both upload paths (single
//! request and tus) against the real binary: images must decode, and legacy Office files
//! (OLE2 compound files) are told apart by the class of their root storage.

mod common;
mod ingest_support;

use ingest_support::*;

/// Both paths: (HTTP status, problem JSON or item, the item's id if one exists).
async fn upload_both_ways(
    lib: &Library,
    name: &str,
    body: &[u8],
) -> [(u16, serde_json::Value, Option<i64>); 2] {
    let q = format!("category={}&filename={name}", lib.category);
    let (status, json) =
        status_and_json(post_media(&lib.teacher, &q, body.to_vec(), Some(content_digest(body))).await).await;
    let simple_id = json["id"].as_i64();
    let (tus_status, tus_json, tus_id) = tus_upload(&lib.teacher, lib.category, name, body).await;
    [(status, json, simple_id), (tus_status, tus_json, Some(tus_id))]
}

/// A PNG whose header claims `width`×`height` RGBA pixels, with a few bytes of pixel data:
/// a decompression bomb when large.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // zlib: one stored block of 16 zero bytes, then its Adler-32.
    let mut idat = vec![0x78, 0x01, 0x01, 16, 0, !16, 0xFF];
    idat.extend_from_slice(&[0; 16]);
    idat.extend_from_slice(&0x0010_0001u32.to_be_bytes());
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_that_do_not_decode_are_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let data = lib.data();

    let truncated = broken_png(1, 9_000);
    let mut garbled = broken_png(2, 20_000);
    garbled.extend_from_slice(&[0xA5; 64]);
    let bomb = png_claiming(100_000, 100_000);
    let cases: [(&str, &[u8], &str); 3] = [
        ("truncated.png", &truncated, "image-undecodable"),
        ("garbled.png", &garbled, "image-undecodable"),
        ("bomb.png", &bomb, "image-too-large"),
    ];
    for (name, body, code) in cases {
        for (path, (status, p, id)) in
            ["simple", "tus"].into_iter().zip(upload_both_ways(&lib, name, body).await)
        {
            assert_eq!((status, p["code"].as_str()), (422, Some(code)), "{name} via {path}: {p}");
            let detail = p["detail"].as_str().unwrap_or_default();
            let expected = if code == "image-undecodable" {
                "This image could not be read"
            } else {
                "larger than reelbox accepts"
            };
            assert!(
                detail.contains(expected) && detail.contains("Nothing was stored"),
                "{name} via {path}: {detail}"
            );
            if let Some(id) = id {
                assert_eq!(
                    lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(),
                    404,
                    "{name} via {path}: the item does not appear"
                );
            }
            assert!(blobs(&data).is_empty(), "{name} via {path}: {:?}", blobs(&data));
            assert!(temp_files(&data).is_empty(), "{name} via {path}: {:?}", temp_files(&data));
        }
    }
    let rejected = audit(&lib.admin, "upload.rejected").await;
    assert_eq!(rejected.len(), 6, "{rejected:?}");
    assert!(
        rejected.iter().all(|e| e["detail"].as_str().is_some_and(|d| d.contains("image"))),
        "each refusal says why: {rejected:?}"
    );
    assert!(audit(&lib.admin, "upload.completed").await.is_empty());
    assert!(audit(&lib.admin, "media.preview_failed").await.is_empty());
    let browser = lib.server.browser_login("tess", common::PASSWORD).await;
    let page = browser.get(&format!("/categories/{}", lib.category)).await.text().await.expect("page");
    assert!(!page.contains("truncated.png") && !page.contains("bomb.png"), "{page}");

    // A real PNG passes both ways and gets its thumbnails.
    let good = png(3, 5_000);
    for (path, (status, p, id)) in
        ["simple", "tus"].into_iter().zip(upload_both_ways(&lib, "good.png", &good).await)
    {
        assert!(status == 201 || status == 204, "{path}: {status} {p}");
        let id = id.expect("id");
        let item = lib.teacher.get_json(&format!("/api/v1/media/{id}")).await;
        assert_eq!(
            (item["kind"].as_str(), item["status"].as_str()),
            (Some("image"), Some("ready")),
            "{item}"
        );
        let thumb = lib.teacher.get(&format!("/api/v1/media/{id}/thumbnail/320")).await;
        assert_eq!(thumb.status().as_u16(), 200, "{path}: thumbnail");
    }
}

/// The class ids (CLSID) of the root storage that name the legacy Office formats.
const WORD_97: &str = "00020906-0000-0000-c000-000000000046";
const EXCEL_97: &str = "00020820-0000-0000-c000-000000000046";
const POWERPOINT_97: &str = "64818d10-4f9b-11cf-86ea-00aa00b929e8";
/// A Windows Installer package: a compound file, but not a document.
const MSI: &str = "000c1084-0000-0000-c000-000000000046";

/// A CLSID as stored on disk: the first three fields little-endian, the last eight bytes as written.
fn clsid_bytes(clsid: &str) -> [u8; 16] {
    let hex: String = clsid.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    hex::decode_to_slice(&hex, &mut b).expect("clsid hex");
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// A minimal valid compound file (MS-CFB version 3, 512-byte sectors): the header, one FAT
/// sector, `gap` unused sectors, then one directory sector holding only the root storage with
/// the class `clsid`. With a gap the directory lies past the first 8 KiB, where detection that
/// only looks at the head cannot see it.
fn compound_file(clsid: &str, gap: u32) -> Vec<u8> {
    const FREE: u32 = 0xFFFF_FFFF;
    const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
    const FAT_SECTOR: u32 = 0xFFFF_FFFD;
    const NO_STREAM: u32 = 0xFFFF_FFFF;
    let put16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let put32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    let directory_sector = 1 + gap;

    let mut file = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    file.extend_from_slice(&[0; 16]); // header CLSID
    put16(&mut file, 0x003E); // minor version
    put16(&mut file, 0x0003); // major version 3
    put16(&mut file, 0xFFFE); // little-endian
    put16(&mut file, 9); // 2^9 = 512-byte sectors
    put16(&mut file, 6); // 64-byte mini sectors
    file.extend_from_slice(&[0; 6]);
    put32(&mut file, 0); // directory sectors: 0 in version 3
    put32(&mut file, 1); // FAT sectors
    put32(&mut file, directory_sector);
    put32(&mut file, 0); // transaction signature
    put32(&mut file, 4096); // mini stream cutoff
    put32(&mut file, END_OF_CHAIN); // no mini FAT
    put32(&mut file, 0);
    put32(&mut file, END_OF_CHAIN); // no DIFAT sectors
    put32(&mut file, 0);
    put32(&mut file, 0); // DIFAT[0]: the FAT is sector 0
    for _ in 1..109 {
        put32(&mut file, FREE);
    }
    assert_eq!(file.len(), 512);

    // Sector 0: the FAT.
    for sector in 0..128u32 {
        let entry = match sector {
            0 => FAT_SECTOR,
            s if s == directory_sector => END_OF_CHAIN,
            _ => FREE,
        };
        put32(&mut file, entry);
    }
    // The gap: unallocated sectors.
    file.resize(file.len() + 512 * gap as usize, 0);

    // The directory: the root storage, then three unused entries.
    let mut root = Vec::with_capacity(128);
    let name: Vec<u16> = "Root Entry".encode_utf16().chain([0]).collect();
    for unit in &name {
        put16(&mut root, *unit);
    }
    root.resize(64, 0);
    put16(&mut root, (name.len() * 2) as u16);
    root.push(5); // root storage
    root.push(1); // black
    put32(&mut root, NO_STREAM); // left sibling
    put32(&mut root, NO_STREAM); // right sibling
    put32(&mut root, NO_STREAM); // child: none
    root.extend_from_slice(&clsid_bytes(clsid));
    put32(&mut root, 0); // state bits
    root.extend_from_slice(&[0; 16]); // creation and modification times
    put32(&mut root, END_OF_CHAIN); // no mini stream
    root.extend_from_slice(&[0; 8]); // its size: 0
    assert_eq!(root.len(), 128);
    file.extend_from_slice(&root);
    for _ in 0..3 {
        let mut unused = vec![0u8; 68];
        for _ in 0..3 {
            put32(&mut unused, NO_STREAM);
        }
        unused.resize(128, 0);
        file.extend_from_slice(&unused);
    }
    assert_eq!(file.len(), 512 * (2 + directory_sector as usize));
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_office_files_are_documents_and_other_compound_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lib = Library::start(&dir.path().join("data"), dir.path()).await;
    let data = lib.data();

    let cases = [
        ("lesson.doc", WORD_97, 0, "application/msword"),
        ("marks.xls", EXCEL_97, 0, "application/vnd.ms-excel"),
        ("slides.ppt", POWERPOINT_97, 0, "application/vnd.ms-powerpoint"),
        // The directory past the first 8 KiB: only the whole file tells.
        ("late.doc", WORD_97, 20, "application/msword"),
    ];
    for (name, clsid, gap, mime) in cases {
        let body = compound_file(clsid, gap);
        for (path, (status, p, id)) in
            ["simple", "tus"].into_iter().zip(upload_both_ways(&lib, name, &body).await)
        {
            assert!(status == 201 || status == 204, "{name} via {path}: {status} {p}");
            let id = id.expect("id");
            let item = lib.teacher.get_json(&format!("/api/v1/media/{id}")).await;
            assert_eq!(item["kind"], "document", "{name} via {path}: {item}");
            assert_eq!(item["status"], "ready", "{name} via {path}: {item}");
            assert_eq!(item["sha256"], sha256_hex(&body), "{name} via {path}");
            assert_eq!(item["mime"], mime, "{name} via {path}");
            // Served as bytes to save, under its name, never opened in the browser.
            let original = lib.teacher.get(&format!("/api/v1/media/{id}/original")).await;
            let disposition = common::header(original.headers(), "content-disposition");
            assert!(
                disposition.starts_with(&format!("attachment; filename=\"{name}\"")),
                "{name} via {path}: {disposition}"
            );
            assert_eq!(original.bytes().await.expect("download").as_ref(), body.as_slice());
        }
    }
    let stored = blobs(&data).len();
    assert_eq!(stored, 4, "each file once, however it was uploaded");

    // A compound file that is none of them (an installer), small or with the directory late.
    for (name, gap) in [("setup.doc", 0), ("setup-late.xls", 20)] {
        let body = compound_file(MSI, gap);
        for (path, (status, p, id)) in
            ["simple", "tus"].into_iter().zip(upload_both_ways(&lib, name, &body).await)
        {
            assert_eq!(
                (status, p["code"].as_str()),
                (415, Some("unsupported-type")),
                "{name} via {path}: {p}"
            );
            let detail = p["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("installer") && detail.contains("documents ("),
                "{name} via {path}: {detail}"
            );
            if let Some(id) = id {
                assert_eq!(lib.admin.get(&format!("/api/v1/media/{id}")).await.status().as_u16(), 404);
            }
        }
    }
    assert_eq!(blobs(&data).len(), stored, "nothing more stored");
    assert!(temp_files(&data).is_empty(), "{:?}", temp_files(&data));
    assert_eq!(audit(&lib.admin, "upload.rejected").await.len(), 4);
}
