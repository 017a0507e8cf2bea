//! `pice-edge-agent fetch-weights`: the init container that brings a model's weights file from
//! an HTTP(S) URL into the node-local cache and checks its sha256, so the model server starts
//! only on the file the pool named, and a second replica on the same node finds it there and
//! downloads nothing. A wrong checksum or an unreachable URL fails the container with a message
//! that the operator shows in the pool's conditions.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use ring::digest::{Context, SHA256};
use tokio::io::AsyncWriteExt;

/// Why the weights could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("weights URL {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("weights URL {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("bad checksum: the file at {url} has sha256 {actual}, the pool asks for {expected}")]
    BadChecksum { url: String, expected: String, actual: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// What `fetch` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The file was already in the cache with the right checksum.
    Cached,
    /// The file was downloaded; its size in bytes.
    Downloaded(u64),
}

/// Makes `dest` hold the file at `url` whose sha256 (hex) is `sha256`: keeps a cached copy
/// with that checksum, else downloads to a temporary file beside it, checks, and renames.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    sha256: &str,
    dest: &Path,
) -> Result<Fetched, FetchError> {
    let expected = sha256.to_ascii_lowercase();
    if file_sha256(dest).await.is_some_and(|actual| actual == expected) {
        return Ok(Fetched::Cached);
    }
    let write_error = |source| FetchError::Write { path: dest.to_owned(), source };
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(write_error)?;
    }
    let partial = dest.with_extension(format!("partial-{}", std::process::id()));
    let downloaded = download(client, url, &partial).await;
    let result = match downloaded {
        Ok((actual, _)) if actual != expected => {
            Err(FetchError::BadChecksum { url: url.to_owned(), expected, actual })
        }
        Ok((_, size)) => {
            tokio::fs::rename(&partial, dest).await.map(|()| Fetched::Downloaded(size)).map_err(write_error)
        }
        Err(error) => Err(error),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}

/// Streams `url` into `path`, hashing as it goes; the sha256 (hex) and the size.
async fn download(client: &reqwest::Client, url: &str, path: &Path) -> Result<(String, u64), FetchError> {
    let unreachable =
        |e: reqwest::Error| FetchError::Unreachable { url: url.to_owned(), reason: e.to_string() };
    let response = client.get(url).send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_owned(), status: response.status().as_u16() });
    }
    let write_error = |source| FetchError::Write { path: path.to_owned(), source };
    let mut file = tokio::fs::File::create(path).await.map_err(write_error)?;
    let mut digest = Context::new(&SHA256);
    let mut size = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(unreachable)?;
        digest.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    file.flush().await.map_err(write_error)?;
    Ok((hex(digest.finish().as_ref()), size))
}

/// The sha256 (hex) of the file at `path`, if it can be read.
async fn file_sha256(path: &Path) -> Option<String> {
    let bytes = tokio::fs::read(path).await.ok()?;
    Some(hex(ring::digest::digest(&SHA256, &bytes).as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::Router;
    use axum::routing::get;

    use super::*;

    const BODY: &str = "GGUF weights for a test";
    /// sha256 of BODY.
    fn body_sha256() -> String {
        hex(ring::digest::digest(&SHA256, BODY.as_bytes()).as_ref())
    }

    async fn server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/model.gguf", get(|| async { BODY }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn weights_are_downloaded_once_and_found_in_the_cache_the_second_time() {
        pice_wire::crypto::install_default_provider();
        let (client, base, dir) = (reqwest::Client::new(), server().await, tempfile::tempdir().unwrap());
        let dest = dir.path().join("model.gguf");
        let url = format!("{base}/model.gguf");
        let first = fetch(&client, &url, &body_sha256().to_uppercase(), &dest).await.unwrap();
        assert_eq!(first, Fetched::Downloaded(BODY.len() as u64));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), BODY);
        assert_eq!(fetch(&client, &url, &body_sha256(), &dest).await.unwrap(), Fetched::Cached);
    }

    #[tokio::test]
    async fn a_wrong_checksum_fails_naming_both_sums_and_leaves_no_file() {
        pice_wire::crypto::install_default_provider();
        let (client, base, dir) = (reqwest::Client::new(), server().await, tempfile::tempdir().unwrap());
        let dest = dir.path().join("model.gguf");
        let wrong = "0".repeat(64);
        let error = fetch(&client, &format!("{base}/model.gguf"), &wrong, &dest).await.unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("bad checksum"), "{message}");
        assert!(message.contains(&body_sha256()) && message.contains(&wrong), "{message}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn an_unreachable_url_and_a_missing_file_are_told_apart() {
        pice_wire::crypto::install_default_provider();
        let (client, base, dir) = (reqwest::Client::new(), server().await, tempfile::tempdir().unwrap());
        let dest = dir.path().join("model.gguf");
        let missing = fetch(&client, &format!("{base}/other.gguf"), &body_sha256(), &dest).await.unwrap_err();
        assert!(matches!(missing, FetchError::Status { status: 404, .. }), "{missing}");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let url = format!("http://{closed}/model.gguf");
        let unreachable = fetch(&client, &url, &body_sha256(), &dest).await.unwrap_err();
        assert!(
            unreachable.to_string().starts_with(&format!("weights URL {url} is unreachable")),
            "{unreachable}"
        );
    }
}
