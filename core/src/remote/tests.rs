use std::sync::Arc;

use super::*;
use crate::dpl::{Lock, LockedPackage, LockedWheel};
use crate::install::store_wheel_bytes;
use crate::store::PackageStore;
use crate::wheel::testing::WheelBuilder;

/// A store holding the packages of `wheels`, and a lock of them.
fn stored_lock(root: &std::path::Path, wheels: &[WheelBuilder]) -> (PackageStore, Lock) {
    let store = PackageStore::open(root);
    let mut packages = Vec::new();
    for w in wheels {
        let bytes = w.build();
        let (hash, info) = store_wheel_bytes(&store, &w.filename(), &bytes).unwrap();
        let sha = crate::hash::sha256_hex(&bytes);
        store.record_wheel(&sha, &hash);
        let mut sha256 = [0; 32];
        data_encoding::HEXLOWER
            .decode_mut(sha.as_bytes(), &mut sha256)
            .unwrap();
        packages.push(LockedPackage {
            name: info.name,
            version: info.version,
            marker: None,
            requires_python: None,
            index_url: None,
            extras: Vec::new(),
            extras_bitmap: 0,
            wheel: LockedWheel {
                filename: w.filename(),
                url: None,
                path: None,
                sha256,
                size: Some(bytes.len() as u64),
            },
            sdist: None,
            local: None,
            store_hash: Some(hash),
            dependencies: Vec::new(),
        });
    }
    let lock = Lock {
        meta: crate::dpl::LockMeta::default(),
        packages,
    };
    (store, lock)
}

fn two_wheels() -> Vec<WheelBuilder> {
    vec![
        WheelBuilder::new("alpha", "1.0").file("alpha/__init__.py", b"A = 1\n"),
        WheelBuilder::new("beta", "2.0").file("beta/__init__.py", &[b'b'; 100_000]),
    ]
}

/// A store holding [`two_wheels`], its lock, and a directory tier the lock was pushed to.
fn pushed() -> (tempfile::TempDir, PackageStore, Lock, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (store, lock) = stored_lock(&tmp.path().join("a"), &two_wheels());
    let remote_dir = tmp.path().join("remote");
    push_lock(&store, &lock, &tier(&remote_dir)).unwrap();
    (tmp, store, lock, remote_dir)
}

/// Replaces the read-only file at `path` with `bytes`.
fn replace(path: &std::path::Path, bytes: &[u8]) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn tier(dir: &std::path::Path) -> Arc<RemoteTier> {
    Arc::new(RemoteTier::open(dir.to_str().unwrap(), &ClientOptions::default()).unwrap())
}

#[test]
fn push_then_fetch_brings_every_package_into_an_empty_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, lock) = stored_lock(&tmp.path().join("a"), &two_wheels());
    let remote = tier(&tmp.path().join("remote"));
    let report = push_lock(&store, &lock, &remote).unwrap();
    assert_eq!((report.objects, report.skipped, report.records), (2, 0, 2));
    // Pushed again: everything is there already.
    let again = push_lock(&store, &lock, &remote).unwrap();
    assert_eq!((again.objects, again.skipped, again.records), (0, 2, 0));

    let fresh = PackageStore::open(tmp.path().join("b")).with_remote(remote.clone());
    let mut packages = lock.packages.clone();
    for p in &mut packages {
        p.store_hash = None;
    }
    // As an install fetches: it unpacks what it stores.
    let unpack = crate::install::unpack_when_stored(&fresh);
    let rest = fetch_missing(&fresh, &mut packages, vec![0, 1], Some(&unpack)).unwrap();
    assert!(rest.is_empty());
    for (p, q) in packages.iter().zip(&lock.packages) {
        assert_eq!(p.store_hash, q.store_hash);
        let hash = p.store_hash.unwrap();
        assert!(fresh.verify(&hash).unwrap());
        // Fetched for an install: written once, as its unpacked copy and its thin file.
        #[cfg(unix)]
        assert!(fresh.thin_path(&hash).is_file() && !fresh.get_path(&hash).exists());
        // Recorded locally: the next lock of this wheel finds it without the remote.
        assert_eq!(
            fresh.wheel_object(&p.wheel.sha256_hex(), &p.wheel.filename),
            Some(hash)
        );
    }
    assert_eq!(remote.stats().objects, 2);
}

#[test]
fn a_package_the_remote_lacks_is_left_for_the_ordinary_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, lock) = stored_lock(&tmp.path().join("a"), &two_wheels());
    let remote = tier(&tmp.path().join("empty"));
    let fresh = PackageStore::open(tmp.path().join("b")).with_remote(remote.clone());
    let mut packages = lock.packages.clone();
    let rest = fetch_missing(&fresh, &mut packages, vec![0, 1], None).unwrap();
    assert_eq!(rest, vec![0, 1]);
    assert_eq!(remote.stats().missing.len(), 2);
}

#[test]
fn a_corrupt_object_is_refused_and_never_stored() {
    let (tmp, _, lock, remote_dir) = pushed();
    let hash = lock.packages[1].store_hash.unwrap();
    let object = remote_dir.join(object_key(&hash));
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[5000] ^= 1;
    replace(&object, &bytes);

    let fresh = PackageStore::open(tmp.path().join("b")).with_remote(tier(&remote_dir));
    let err = fresh
        .remote()
        .unwrap()
        .fetch_object(&fresh, &hash)
        .unwrap_err();
    let RemoteError::Corrupt { hash: h, url, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*h, hash);
    assert!(url.ends_with(&object_key(&hash)), "{url}");
    assert!(!fresh.contains(&hash));
    // Through an install's fetch step: the error names the object, nothing is stored.
    let mut packages = lock.packages.clone();
    let err = fetch_missing(&fresh, &mut packages, vec![1], None).unwrap_err();
    assert!(err.to_string().contains(&hash.to_hex()), "{err}");
    assert!(!fresh.contains(&hash));
}

#[test]
fn a_record_naming_another_package_is_not_followed() {
    let (tmp, _, lock, remote_dir) = pushed();
    // alpha's record names beta's object.
    let record = remote_dir.join(wheel_key(&lock.packages[0].wheel.sha256_hex()));
    replace(
        &record,
        lock.packages[1].store_hash.unwrap().to_hex().as_bytes(),
    );
    let fresh = PackageStore::open(tmp.path().join("b")).with_remote(tier(&remote_dir));
    let mut packages = lock.packages.clone();
    let rest = fetch_missing(&fresh, &mut packages, vec![0], None).unwrap();
    assert_eq!(rest, vec![0]);
}

#[test]
fn a_damaged_record_is_an_error_naming_it() {
    let (tmp, _, lock, remote_dir) = pushed();
    let key = wheel_key(&lock.packages[0].wheel.sha256_hex());
    replace(&remote_dir.join(&key), b"not a hash");
    let fresh = PackageStore::open(tmp.path().join("b"));
    let err = tier(&remote_dir)
        .fetch_for_wheel(
            &fresh,
            &lock.packages[0].wheel.sha256_hex(),
            "x",
            crate::store::ObjectForm::Full,
        )
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::BadRecord { url } if url.ends_with(&key)),
        "{err}"
    );
}

#[test]
fn concurrent_askers_fetch_an_object_once() {
    let (tmp, _, lock, remote_dir) = pushed();
    let remote = tier(&remote_dir);
    let fresh = PackageStore::open(tmp.path().join("b"));
    let hash = lock.packages[1].store_hash.unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert!(remote.fetch_object(&fresh, &hash).unwrap()));
        }
    });
    assert_eq!(remote.stats().objects, 1);
    // Fetched for a mount: kept full, nothing unpacked.
    assert!(fresh.get_path(&hash).is_file() && !fresh.unpacked_path(&hash).exists());
}

#[test]
fn push_refuses_a_lock_the_store_lacks_and_http_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, lock) = stored_lock(&tmp.path().join("a"), &two_wheels());
    let empty = PackageStore::open(tmp.path().join("empty"));
    let err = push_lock(&empty, &lock, &tier(&tmp.path().join("r"))).unwrap_err();
    assert!(
        matches!(&err, RemoteError::NotStored { name, .. } if name == "alpha"),
        "{err}"
    );

    let (store, lock) = stored_lock(&tmp.path().join("c"), &two_wheels());
    let http = RemoteTier::open("http://127.0.0.1:9/store", &ClientOptions::default()).unwrap();
    // Refused before anything is asked (nothing listens on that port).
    let err = push_lock(&store, &lock, &http).unwrap_err();
    assert!(matches!(err, RemoteError::ReadOnly { .. }), "{err}");
}

#[test]
fn urls_that_cannot_name_a_tier_are_refused() {
    for bad in ["", "ftp://host/x", "s3://", "s3:///prefix", "http://"] {
        let err = RemoteTier::open(bad, &ClientOptions::default()).unwrap_err();
        assert!(
            matches!(err, RemoteError::InvalidUrl { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn keys_follow_the_store_fan_out_and_refuse_unsafe_tags() {
    let hash = ContentHash::of(b"x");
    let hex = hash.to_hex();
    assert_eq!(
        object_key(&hash),
        format!("{}/{}/{hex}.dxpkg", &hex[..2], &hex[2..4])
    );
    assert!(is_safe_component("cpython-312"));
    for bad in ["", ".", "..", "a/b", "a\\b"] {
        assert!(!is_safe_component(bad), "{bad}");
    }
}

/// A one-thread HTTP server on 127.0.0.1 serving the files of `root` by path, answering the
/// first `fail` requests with 503; returns its URL and the paths asked for, in order.
fn flaky_server(
    root: std::path::PathBuf,
    fail: usize,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/store", listener.local_addr().unwrap());
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        let mut failures = fail;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            // One request per connection (`Connection: close`), headers read and dropped.
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n <= 2) {
                    break;
                }
            }
            log.lock().unwrap().push(path.clone());
            let body = path
                .strip_prefix("/store/")
                .and_then(|key| std::fs::read(root.join(key)).ok());
            let (status, body) = match body {
                _ if failures > 0 => {
                    failures -= 1;
                    ("503 Service Unavailable", Vec::new())
                }
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", Vec::new()),
            };
            let mut out = &stream;
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(&body);
        }
    });
    (url, asked)
}

#[test]
fn http_retries_transient_errors_and_takes_404_as_absent() {
    let (tmp, _, lock, remote_dir) = pushed();
    let (url, asked) = flaky_server(remote_dir, 1);
    let options = ClientOptions {
        backoff: std::time::Duration::from_millis(1),
        ..ClientOptions::default()
    };
    let remote = Arc::new(RemoteTier::open(&url, &options).unwrap());
    let fresh = PackageStore::open(tmp.path().join("b")).with_remote(remote.clone());
    let mut packages = lock.packages.clone();
    let rest = fetch_missing(&fresh, &mut packages, vec![0, 1], None).unwrap();
    assert!(rest.is_empty());
    assert_eq!(remote.stats().objects, 2);
    // One 503, asked again; every other file asked once.
    let first = asked.lock().unwrap().clone();
    assert_eq!(first.len(), 5, "{first:?}");
    // A pack the server does not have: absent, and not asked again.
    let hash = lock.packages[0].store_hash.unwrap();
    assert_eq!(
        remote.fetch_pack(&fresh, &hash, "cpython-399").unwrap(),
        None
    );
    assert_eq!(
        remote.fetch_pack(&fresh, &hash, "cpython-399").unwrap(),
        None
    );
    assert_eq!(asked.lock().unwrap().len(), 6);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Whatever byte of a pushed object the remote changes, the fetch is refused naming the
    /// object, and the store does not get it; untouched, it arrives byte for byte.
    #[test]
    fn any_changed_byte_is_refused(content in proptest::collection::vec(proptest::num::u8::ANY, 1..40_000), at in proptest::num::usize::ANY, flip in 1u8..) {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = WheelBuilder::new("gamma", "1.0").file("gamma/data.bin", &content);
        let (store, lock) = stored_lock(&tmp.path().join("a"), &[wheel]);
        let remote_dir = tmp.path().join("remote");
        push_lock(&store, &lock, &tier(&remote_dir)).unwrap();
        let hash = lock.packages[0].store_hash.unwrap();

        let intact = PackageStore::open(tmp.path().join("b"));
        proptest::prop_assert!(tier(&remote_dir).fetch_object(&intact, &hash).unwrap());
        proptest::prop_assert_eq!(
            std::fs::read(intact.get_path(&hash)).unwrap(),
            store.object_bytes(&hash).unwrap()
        );

        let object = remote_dir.join(object_key(&hash));
        let mut bytes = std::fs::read(&object).unwrap();
        let at = at % bytes.len();
        bytes[at] ^= flip;
        replace(&object, &bytes);
        let fresh = PackageStore::open(tmp.path().join("c"));
        let refused = matches!(
            tier(&remote_dir).fetch_object(&fresh, &hash),
            Err(RemoteError::Corrupt { hash: h, .. }) if h == hash
        );
        proptest::prop_assert!(refused);
        proptest::prop_assert!(!fresh.contains(&hash));
    }
}
