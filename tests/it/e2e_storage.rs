//! Storage against a real Azurite: service SAS accepted and refused exactly as the service does, and
//! blob names that must round-trip.

use std::time::Duration;

use crate::support::storage::{blob_sas_url, container_sas_url};
use blob2batch::storage::blob::http_download_to_file;
use blob2batch::storage::sas::{SasOptions, SasProtocol, SasResource};
use blob2batch::storage::{BlobHttpHeaders, ContainerClient, encode_blob_name};
use time::OffsetDateTime;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn put_blob(url: &str, body: &'static str) -> u16 {
    http()
        .put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", "2025-11-05")
        .body(body)
        .send()
        .await
        .expect("PUT reaches Azurite")
        .status()
        .as_u16()
}

async fn get_status(url: &str) -> (u16, String) {
    let response = http()
        .get(url)
        .header("x-ms-version", "2025-11-05")
        .send()
        .await
        .expect("GET reaches Azurite");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn fresh_container(name: &str) -> ContainerClient {
    crate::support::storage::fresh_container(name).await
}

#[tokio::test]
async fn service_sas_is_accepted_and_refused_like_the_service() {
    let azurite = crate::support::azurite::azurite();
    let account = azurite.account();
    let admin = fresh_container("sas").await;
    admin
        .upload_bytes(
            "docs/a b#1.txt",
            b"hello sas".to_vec(),
            &BlobHttpHeaders::content_type("text/plain"),
        )
        .await
        .unwrap();
    admin
        .upload_bytes("other.txt", b"other".to_vec(), &BlobHttpHeaders::default())
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);

    // Read with a blob SAS.
    let read_url = blob_sas_url(&account, "sas", "docs/a b#1.txt", "r", hour);
    assert_eq!(get_status(&read_url).await, (200, "hello sas".to_string()));

    // Write with a container create+write SAS.
    let write =
        ContainerClient::from_sas_url(&container_sas_url(&account, "sas", "cw", hour)).unwrap();
    assert_eq!(put_blob(&write.blob_url("out/r é.json"), "{}").await, 201);
    assert_eq!(admin.read("out/r é.json").await.unwrap(), b"{}");

    // Tampered signature.
    let tampered = tamper(&read_url);
    assert_eq!(get_status(&tampered).await.0, 403);

    // A blob SAS used for another blob.
    let wrong_blob = read_url.replace("docs/a%20b%231.txt", "other.txt");
    assert_ne!(wrong_blob, read_url);
    assert_eq!(get_status(&wrong_blob).await.0, 403);

    // Missing permission: read-only SAS used to write; write-only SAS used to read.
    assert_eq!(put_blob(&read_url, "nope").await, 403);
    assert_eq!(get_status(&write.blob_url("other.txt")).await.0, 403);

    // Expired.
    let key = account.key();
    let expired = key.service_sas(
        SasResource::Blob {
            container: "sas",
            blob: "docs/a b#1.txt",
        },
        &SasOptions {
            permissions: "r".into(),
            start: Some(OffsetDateTime::now_utc() - Duration::from_secs(7200)),
            expiry: OffsetDateTime::now_utc() - Duration::from_secs(60),
            protocol: SasProtocol::HttpsAndHttp,
        },
    );
    let expired_url = expired.append_to(&account.blob_url("sas", "docs/a b#1.txt"));
    assert_eq!(get_status(&expired_url).await.0, 403);

    // https-only SAS over http.
    let https_only = key.service_sas(
        SasResource::Blob {
            container: "sas",
            blob: "docs/a b#1.txt",
        },
        &SasOptions {
            permissions: "r".into(),
            start: None,
            expiry: OffsetDateTime::now_utc() + hour,
            protocol: SasProtocol::Https,
        },
    );
    let https_only_url = https_only.append_to(&account.blob_url("sas", "docs/a b#1.txt"));
    assert_eq!(get_status(&https_only_url).await.0, 403);
}

fn tamper(url: &str) -> String {
    let (head, sig) = url.rsplit_once("sig=").unwrap();
    let mut sig = sig.to_string();
    let first = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, first);
    format!("{head}sig={sig}")
}

#[tokio::test]
async fn awkward_blob_names_round_trip() {
    let container = fresh_container("names").await;
    let long = format!("deep/{}", "x".repeat(1024 - 5));
    assert_eq!(long.chars().count(), 1024);
    let names = [
        "plain.txt",
        "with space.txt",
        "hash#tag.txt",
        "percent%20literal.txt",
        "question?mark.txt",
        "semi;colon$(x).txt",
        "plus+and&amp=.txt",
        "Ünïcödé/日本語.txt",
        "emoji 😀/🚀.txt",
        "nested/folders/a/b/c.txt",
        long.as_str(),
    ];
    for (i, name) in names.iter().enumerate() {
        container
            .upload_bytes(
                name,
                format!("content {i}").into_bytes(),
                &BlobHttpHeaders::content_type("text/plain"),
            )
            .await
            .unwrap_or_else(|e| panic!("upload {name:?}: {e}"));
    }
    let listed = container.list(None).await.unwrap();
    for (i, name) in names.iter().enumerate() {
        let entry = listed
            .iter()
            .find(|e| e.name == *name)
            .unwrap_or_else(|| panic!("{name:?} not listed in {listed:?}"));
        assert!(!entry.etag.is_empty() && !entry.etag.contains('"'));
        assert_eq!(entry.size, format!("content {i}").len() as u64);
        assert_eq!(
            container.read(name).await.unwrap(),
            format!("content {i}").into_bytes(),
            "{name:?} ({})",
            encode_blob_name(name)
        );
    }
    assert_eq!(listed.len(), names.len());
    let nested = container.list(Some("nested/")).await.unwrap();
    assert_eq!(nested.len(), 1);
    assert!(
        crate::support::storage::read_if_exists(&container, "absent")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn large_files_upload_in_blocks_and_download_streaming() {
    let container = fresh_container("large").await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    let data: Vec<u8> = (0..(20 * 1024 * 1024 + 12345u32))
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let calls = std::sync::Mutex::new(Vec::new());
    let progress = |sent: u64, total: u64| calls.lock().unwrap().push((sent, total));
    let uploaded = container
        .upload_file(
            "big/blob é.bin",
            &src,
            &BlobHttpHeaders::content_type("application/octet-stream"),
            Some(&progress),
        )
        .await
        .unwrap();
    assert_eq!(uploaded.size, data.len() as u64);
    assert!(uploaded.etag.is_some());
    let calls = calls.into_inner().unwrap();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        calls.last().unwrap(),
        &(data.len() as u64, data.len() as u64)
    );

    // Back the way a task fetches its resource file: a plain GET of a blob SAS URL, streamed.
    let dst = dir.path().join("back.bin");
    let url = blob_sas_url(
        &crate::support::azurite::azurite().account(),
        "large",
        "big/blob é.bin",
        "r",
        Duration::from_secs(600),
    );
    let n = http_download_to_file(&reqwest::Client::new(), &url, &dst)
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(std::fs::read(&dst).unwrap() == data);
    let listed = container.list(Some("big/")).await.unwrap();
    assert_eq!(
        listed[0].content_type.as_deref(),
        Some("application/octet-stream")
    );
}
